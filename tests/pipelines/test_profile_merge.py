"""How a config file's values sit over its profile's: groups of options merge key by key, other mappings replace."""

from pipeline_lib.profiles import apply_profile


def test_an_empty_mapping_value_in_the_file_replaces_the_profiles():
    # configs/demo-aurora.yaml clears Aurora's N per skill; merging it key by key brought N back and the
    # aurora demo refused to load (curriculum.tasks span two skills with N per skill)
    out = apply_profile({"profile": "aurora", "curriculum": {"epoch_size_by_skill": {}}})
    assert out["curriculum"]["epoch_size_by_skill"] == {}
    assert out["curriculum"]["style"] == "aurora"


def test_a_group_of_options_merges_key_by_key():
    out = apply_profile({"profile": "perceptio", "finetune": {"segmentation": {"sam2_checkpoint": "tiny"}}})
    assert out["finetune"]["segmentation"] == {"enabled": True, "sam2_checkpoint": "tiny"}
    vpt = apply_profile({"profile": "vpt", "finetune": {"vpt": {"reencoder": "tiny"}}})["finetune"]["vpt"]
    assert vpt["reencoder"] == "tiny" and vpt["grid"] == 8 and vpt["mask_modeling"] == 0.5
