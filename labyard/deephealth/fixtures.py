"""DeepHealth's fixed rows: tasks, properties and allowed properties as its fixtures ship them
(docs: /work/shared/reference/deephealth-api.md §3), and its models as the templates' networks.

Nothing here is a table: tasks, properties and allowed properties are constants, and the
models are read from the template catalog (each classification or segmentation template's
`network` options in its mlsteam.yml). DeepHealth's five fixture models keep their ids
(1 LeNet ... 5 ResNet50), mapped onto the nearest network; the templates' other networks
follow from id 6 in catalog order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from labyard.mlsteam import CONFIG_FILE, LabConfig, parse_mlsteam
from labyard.templates_catalog import catalog

CLASSIFICATION, SEGMENTATION = 1, 2
WHY_FIXED = (
    "models are the templates' networks, and tasks, properties and allowed properties "
    "follow DeepHealth's fixtures."
)
TASKS: tuple[dict[str, object], ...] = (
    {"id": CLASSIFICATION, "name": "Classification"},
    {"id": SEGMENTATION, "name": "Segmentation"},
)
# Which template trains a task (a template's name is its folder in lab_templates/).
TASK_TEMPLATES = {CLASSIFICATION: "classification", SEGMENTATION: "segmentation"}


@dataclass(frozen=True)
class Model:
    """A DeepHealth model: a template's network."""

    id: int
    name: str
    task_id: int
    template: str
    network: str

    def json(self) -> dict[str, object]:
        """As DeepHealth lists it."""
        return {"id": self.id, "name": self.name, "task_id": self.task_id}


# DeepHealth's fixture models (id, name, task) and the network each runs here.
FIXTURE_MODELS = (
    (1, "LeNet", CLASSIFICATION, "lenet"),
    (2, "VGG16", CLASSIFICATION, "vgg16"),
    (3, "SegNet", SEGMENTATION, "unet_small"),  # the small encoder-decoder stands in
    (4, "U-Net", SEGMENTATION, "unet"),
    (5, "ResNet50", CLASSIFICATION, "resnet50"),
)


# Templates whose train.py starts from registered weights (`--weights`): DeepHealth's lab of
# each declares a `type: weights` param, so /train fine-tunes on the lab as made. The
# segmentation template's train.py takes no weights; its lab trains from scratch only.
FINE_TUNABLE = frozenset({"classification"})
WEIGHTS_PARAM = (
    '  weights: ""\n',
    '  weights: {type: weights, help: "registered weights to start from; empty: from scratch"}\n',
)


def lab_config_text(name: str, text: str) -> str:
    """Template `name`'s mlsteam.yml `text` as DeepHealth's lab of it has it: with an empty
    `weights` param where the template fine-tunes and does not declare one itself."""
    marker = "\nparams_definition:\n"
    if name not in FINE_TUNABLE or marker not in text or re.search(r"(?m)^  weights:", text):
        return text
    head, tail = text.split(marker, 1)
    return f"{head}\n{WEIGHTS_PARAM[0]}params_definition:\n{WEIGHTS_PARAM[1]}{tail}"


@cache
def template_config(name: str) -> LabConfig:
    """A task template's parsed mlsteam.yml, as DeepHealth's lab of it has it."""
    text = (catalog()[name].path / CONFIG_FILE).read_text(encoding="utf-8")
    return parse_mlsteam(lab_config_text(name, text))


def _template_networks() -> list[tuple[int, str, str]]:
    """(task, template, network) of every network the task templates offer, in catalog order."""
    found = []
    templates = catalog()
    for task, name in TASK_TEMPLATES.items():
        template = templates.get(name)
        if template is None:
            continue
        definition = template_config(name).definitions.get("network")
        for option in definition.options or () if definition else ():
            found.append((task, name, str(option)))
    return found


@cache
def models() -> tuple[Model, ...]:
    """Every model, by id: DeepHealth's five, then the templates' other networks."""
    offered = _template_networks()
    out = []
    for model_id, name, task, network in FIXTURE_MODELS:
        if (task, TASK_TEMPLATES[task], network) in offered:
            out.append(Model(model_id, name, task, TASK_TEMPLATES[task], network))
    used = {(m.task_id, m.network) for m in out}
    next_id = len(FIXTURE_MODELS) + 1
    for task, template, network in offered:
        if (task, network) not in used:
            out.append(Model(next_id, network, task, template, network))
            used.add((task, network))
            next_id += 1
    return tuple(out)


def get_model(model_id: int) -> Model | None:
    """The model with this id, or None."""
    return next((m for m in models() if m.id == model_id), None)


# ---------------------------------------------------------------- properties

PROPERTIES: tuple[dict[str, object], ...] = (
    {"id": 1, "name": "Learning rate", "type": "FLT", "default": "0.0001", "values": None},
    {
        "id": 2,
        "name": "Loss function",
        "type": "LST",
        "default": "cross_entropy",
        "values": "cross_entropy,softmax_cross_entropy,mean_squared_error,"
        "binary_cross_entropy,dice",
    },
    {"id": 3, "name": "Epochs", "type": "INT", "default": "50", "values": None},
    {"id": 4, "name": "Batch size", "type": "INT", "default": "1", "values": None},
    {
        "id": 5,
        "name": "Metric",
        "type": "LST",
        "default": "accuracy",
        "values": "accuracy,mean_squared_error,mean_absolute_error,mean_relative_error,dice",
    },
    {"id": 6, "name": "Input height", "type": "INT", "default": "100", "values": None},
    {"id": 7, "name": "Input width", "type": "INT", "default": "100", "values": None},
    {"id": 8, "name": "Training augmentations", "type": "STR", "default": None, "values": None},
    {"id": 9, "name": "Validation augmentations", "type": "STR", "default": None, "values": None},
    {"id": 10, "name": "Test augmentations", "type": "STR", "default": None, "values": None},
)


PROPERTY_NAMES = {int(str(p["id"])): str(p["name"]) for p in PROPERTIES}


def _aug(size: int, *body: str, gt: bool = False) -> str:
    lines = [f'AugResizeDim dims=({size},{size}) interp="cubic"', *body]
    lines.append("AugToFloat32 divisor=255" + (" divisor_gt=255" if gt else ""))
    return "SequentialAugmentationContainer\n" + "".join(f"    {x}\n" for x in lines) + "end"


_HEAVY = (
    "AugMirror p=0.5",
    "AugFlip p=0.5",
    "AugRotate angle=[-5,5]",
    "AugAdditivePoissonNoise lambda=[0,0.51]",
    "AugGammaContrast gamma=[0.5,1.5]",
    "AugGaussianBlur sigma=[0.0,0.8]",
    "AugCoarseDropout p=[0,0.03] drop_size=[0.0,0.05] per_channel=0.25",
)
AUG1 = _aug(28, "AugRotate angle=[-5,5]")
AUG2 = _aug(28)
AUG3 = _aug(224, *_HEAVY)
AUG4 = _aug(224)
AUG5 = _aug(192, *_HEAVY, gt=True)
AUG6 = _aug(192, gt=True)

# (id, property, model, DeepHealth dataset id or None, default_value, allowed_value)
_ALLOWED: tuple[tuple[int, int, int, int | None, str, str | None], ...] = (
    (1, 1, 1, None, "0.0001", ">0.0"),
    (2, 2, 1, None, "cross_entropy", "[cross_entropy,mean_squared_error]"),
    (3, 4, 1, None, "64", ">0"),
    (4, 5, 1, None, "accuracy", "[accuracy]"),
    (5, 6, 1, 1, "28", ">0"),
    (6, 7, 1, 1, "28", ">0"),
    (7, 3, 1, None, "3", ">0"),
    (8, 8, 1, 1, AUG1, None),
    (9, 9, 1, 1, AUG2, None),
    (10, 10, 1, 1, AUG2, None),
    (11, 1, 2, None, "0.0001", ">0.0"),
    (12, 2, 2, None, "cross_entropy", "[cross_entropy,mean_squared_error]"),
    (13, 4, 2, None, "4", ">0"),
    (14, 5, 2, None, "accuracy", "[accuracy]"),
    (15, 6, 2, 3, "224", ">0"),
    (16, 7, 2, 3, "224", ">0"),
    (17, 3, 2, None, "3", ">0"),
    (18, 8, 2, 3, AUG3, None),
    (19, 9, 2, 3, AUG4, None),
    (20, 10, 2, 3, AUG4, None),
    (21, 1, 3, None, "0.001", ">0.0"),
    (22, 2, 3, None, "mean_squared_error", "[cross_entropy,mean_squared_error]"),
    (23, 4, 3, None, "4", ">0"),
    (
        24,
        5,
        3,
        None,
        "mean_squared_error",
        "[mean_squared_error,mean_absolute_error,mean_relative_error]",
    ),
    (25, 3, 3, None, "3", ">0"),
    (26, 6, 3, 2, "192", ">0"),
    (27, 7, 3, 2, "192", ">0"),
    (28, 6, 3, 4, "512", ">0"),
    (29, 7, 3, 4, "512", ">0"),
    (30, 8, 3, 2, AUG5, None),
    (31, 9, 3, 2, AUG6, None),
    (32, 10, 3, 2, AUG6, None),
)
# DeepHealth's fixture datasets and the public Labyard dataset that stands in for each: its
# rows above apply to that dataset (a row whose stand-in does not exist is not listed).
FIXTURE_DATASETS = {1: "digits", 2: "shapes", 3: "isic-classification", 4: "pneumothorax"}


@dataclass(frozen=True)
class AllowedProperty:
    """A model's (and optionally a dataset's) default and allowed values of a property."""

    id: int
    property_id: int
    model_id: int
    fixture_dataset: int | None
    default_value: str
    allowed_value: str | None

    def json(self, dataset_id: int | None) -> dict[str, object]:
        """As DeepHealth lists it, with the Labyard id of its dataset."""
        return {
            "id": self.id,
            "allowed_value": self.allowed_value,
            "default_value": self.default_value,
            "property_id": self.property_id,
            "model_id": self.model_id,
            "dataset_id": dataset_id,
        }


ALLOWED_PROPERTIES = tuple(AllowedProperty(*row) for row in _ALLOWED)


def get_property(property_id: int) -> dict[str, object] | None:
    """The property with this id, or None."""
    return next((p for p in PROPERTIES if p["id"] == property_id), None)


def find_property(name: str) -> dict[str, object] | None:
    """The first property (by id) whose name contains `name` (case-insensitive; `_` reads as a
    space), as DeepHealth's /train matches its `properties` items."""
    wanted = name.lower()
    for prop in PROPERTIES:
        full = str(prop["name"]).lower()
        if wanted in full or wanted.replace("_", " ") in full:
            return prop
    return None
