"""The project's resources, one module per job; import them from here.

- storage_resource.py: where tables and model files live (StorageResource);
- dataset_resources.py: dataset and benchmark roots (DatasetsResource, BenchmarksResource);
- depth_teacher_resource.py: the depth teacher (DepthTeacherResource, build_depth_teacher);
- demo_world.py: generating the demo world once, under a file lock;
- settings_resource.py: how a resource is generated from, built from and mapped back to settings.
"""

from pipeline_lib.dataset_resources import BenchmarksResource, DatasetsResource
from pipeline_lib.depth_teacher_resource import DepthTeacherResource, build_depth_teacher
from pipeline_lib.storage_resource import StorageResource

__all__ = [
    "BenchmarksResource", "DatasetsResource", "DepthTeacherResource",
    "StorageResource", "build_depth_teacher",
]
