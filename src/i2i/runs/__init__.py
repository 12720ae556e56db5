"""What a trained model is, below both training and inference: its model card (``card``),
checkpoint folders and their pointers (``checkpoint``), and run folders in object storage
(``storage``). Reading a card or finding a checkpoint imports no torch."""
