"""Exact prompt and answer wording of every curriculum task.

Depth wording is Aurora's released data generator's, word for word:
the atomic question, the marked-points question and its step-by-step instruction
(the instruction follows the question after a newline), and the short answer "(X)".
Aurora's CoT answer wrote coordinates as plain integers ("Point A is located at
(x = 12 y = 34)"); here they are pixel tokens "(<PIXEL_12>,<PIXEL_34>)" on the 336 grid,
sentences are separated by ", " / ". ", and the conclusion ends with "(X)" so one
parser reads both CoT and direct answers. Counting and grounding wording follow the
paper's descriptions (Sec. 4.2); their exact strings are ours and live only here.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------- depth

DEPTH_ATOMIC_QUESTION = "What is the depth map for the image?"

DEPTH_POINTS_QUESTION = (
    "Multiple points are circled on the image, labeled by letters beside each circle. "
    "Which point is the closest to the camera?"
)
DEPTH_COT_INSTRUCTION = (
    "To answer this question, let's think through it step by step, and we know the image is 336 x 336. "
    "First, what are the coordinates of points in the image? "
    "Second, what is the depth map for the image? "
    "Which point has a higher pixel value on the depth map? "
    "Remember, higher values indicate that the point is closer to the camera."
)
DEPTH_COT_QUESTION = DEPTH_POINTS_QUESTION + "\n" + DEPTH_COT_INSTRUCTION

# CoT answer = ", ".join(POINT_LOCATION per point, letter order) + ". "
#              + DEPTH_MAP_SENTENCE + " " + DEPTH_CONCLUSION
POINT_LOCATION = "Point {letter} is located at {point}"
DEPTH_MAP_SENTENCE = "The depth map for the image is {depth}."
DEPTH_CONCLUSION = (
    "Since point {letter} has the highest pixel value on the depth map, "
    "point {letter} is the closest to the camera, so the answer is ({letter})."
)
# Bottleneck answer = "\n".join(POINT_BOTTLENECK per point + [depth, CHOICE_ANSWER])
POINT_BOTTLENECK = "Point {letter}: {point}"
CHOICE_ANSWER = "({letter})"

# ---------------------------------------------------------------------------- counting

# Atomic box-listing prompts; one is chosen per sample by the builder's rng.
COUNT_ATOMIC_TEMPLATES = (
    "Find the instances of {plural} in the image and return their bounding boxes.",
    "Locate all {plural} in the image and give the bounding box of each one.",
    "Return the bounding boxes of every one of the {plural} in the image.",
    "Where are the {plural} in the image? Answer with one bounding box per instance.",
)
COUNT_NONE_ANSWER = "There are no {plural} in the image."

COUNT_QUESTION = "How many {plural} are in the image?"
COUNT_COT_INSTRUCTION = (
    "To answer this question, let's think through it step by step, and we know the image is 336 x 336. "
    "First, find the bounding box of each of the {plural} in the image, one box per line. "
    "Then count the boxes."
)
# CoT answer = "\n".join(box per line + [count sentence])
COUNT_RESULT_MANY = "There are {count} {plural}."
COUNT_RESULT_ONE = "There is 1 {singular}."

# ---------------------------------------------------------------------------- grounding

GROUND_QUESTION = "Where is {expression}?"
GROUND_DEPTH_QUESTION = "Which is closer to the camera, {first} or {second}?"
# Answer = ", ".join(OBJECT_LOCATION for both, question order) + ". "
#          + DEPTH_MAP_SENTENCE + " " + GROUND_DEPTH_CONCLUSION
OBJECT_LOCATION = '"{expression}" is located at {box}'
GROUND_DEPTH_CONCLUSION = (
    'Since "{nearer}" has a higher value on the depth map, "{nearer}" is closer to the camera.'
)
