"""The curriculum as pure code: task builders, schedules and LLaVA JSON export.

No Dagster, no Parquet: builders take plain values and return :class:`Sample`
objects; schedules order them; :mod:`.llava_json` writes what LLaVA's trainer reads.
"""

from perception_tokens.curriculum.llava_json import (
    LlavaFormatError,
    read_llava_json,
    to_llava_record,
    validate_answer_tokens,
    write_llava_json,
)
from perception_tokens.curriculum.plurals import clean_category_name, pluralize
from perception_tokens.curriculum.sample import (
    KINDS,
    TASK_KIND,
    TASKS,
    ImageRef,
    Sample,
    SkipSample,
    make_sample_id,
)
from perception_tokens.curriculum.schedules import (
    AURORA_PERCENTS,
    annealed_probabilities,
    annealed_schedule,
    aurora_schedule,
    mix_by_epoch,
    plot_mix_by_epoch,
)
from perception_tokens.curriculum import tasks
from perception_tokens.curriculum.tasks import *  # noqa: F403  (the builders; tasks.__all__ lists them once)

__all__ = [
    "AURORA_PERCENTS",
    "KINDS",
    "TASKS",
    "TASK_KIND",
    "ImageRef",
    "LlavaFormatError",
    "Sample",
    "SkipSample",
    "annealed_probabilities",
    "annealed_schedule",
    "aurora_schedule",
    "clean_category_name",
    "make_sample_id",
    "mix_by_epoch",
    "plot_mix_by_epoch",
    "pluralize",
    "read_llava_json",
    "to_llava_record",
    "validate_answer_tokens",
    "write_llava_json",
    *tasks.__all__,
]
