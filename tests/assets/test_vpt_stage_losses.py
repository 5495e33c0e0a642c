"""A VPT run's stage losses in lora_adapter's metrics: the means of each stage's first and last quarter
of steps (one step's loss is one batch's), which ``lora_adapter_learned`` compares."""

from assets.finetune import first_and_final


def test_a_stage_reports_the_means_of_its_first_and_last_quarter():
    history = [(1, 10.0), (2, 9.0), (3, 8.0), (4, 7.0), (5, 3.0), (6, 2.0), (7, 1.0), (8, 0.0)]
    assert first_and_final(history) == [9.5, 0.5]
    assert first_and_final([(1, 4.0), (2, 5.0), (3, 1.0)]) == [4.0, 1.0]  # under 4 steps: one step each end
    assert first_and_final([]) is None  # a stage with no records ran no step
