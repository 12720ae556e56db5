import pytest

from i2i.config import ConfigError, DataConfig, RunConfig, from_dict, set_dotted, to_dict


def test_round_trip_keeps_every_option():
    cfg = RunConfig()
    cfg.train.lr = 1e-3
    cfg.model.generator.kind = "resnet_9blocks"
    assert from_dict(RunConfig, to_dict(cfg)) == cfg


def test_unknown_option_is_named():
    with pytest.raises(ConfigError, match=r"model\.generator: unknown option\(s\) \['nfg'\]"):
        from_dict(RunConfig, {"model": {"generator": {"nfg": 32}}})


def test_bad_choice_lists_the_choices():
    with pytest.raises(ConfigError, match="model.gan_mode: 'wgan' is not one of vanilla, lsgan"):
        from_dict(RunConfig, {"model": {"gan_mode": "wgan"}})


def test_types_are_checked_and_ints_widen_to_float():
    assert from_dict(RunConfig, {"train": {"lr": 1}}).train.lr == 1.0
    with pytest.raises(ConfigError, match="train.batch_size: expected a whole number"):
        from_dict(RunConfig, {"train": {"batch_size": "4"}})
    with pytest.raises(ConfigError, match="data.flip: expected true or false"):
        from_dict(RunConfig, {"data": {"flip": 1}})
    assert from_dict(RunConfig, {"train": {"max_steps": None}}).train.max_steps is None


def test_range_checks_name_the_field():
    with pytest.raises(ConfigError, match="crop_size .* larger than data.load_size"):
        DataConfig(load_size=100, crop_size=128)
    with pytest.raises(ConfigError, match="data.input_nc must be 1 or 3"):
        from_dict(RunConfig, {"data": {"input_nc": 4}})
    with pytest.raises(ConfigError, match="recon_mix"):
        from_dict(RunConfig, {"model": {"recon_mix": 1.5}})
    with pytest.raises(ConfigError, match="data.num_workers must be 0 or more"):
        from_dict(RunConfig, {"data": {"num_workers": -1}})


def test_set_dotted_refuses_unknown_keys():
    data = to_dict(RunConfig())
    set_dotted(data, "train.lr", 0.1)
    assert data["train"]["lr"] == 0.1
    with pytest.raises(ConfigError, match="train.lrr: no such option"):
        set_dotted(data, "train.lrr", 0.1)
    with pytest.raises(ConfigError, match="trian: no such config section"):
        set_dotted(data, "trian.lr", 0.1)
