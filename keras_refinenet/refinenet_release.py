"""Label tables of the authors' released MatConvNet RefineNet models.

Each released model predicts `K` channels; channel `k` stands for the label
value `label_values[k]` of its dataset (the authors' `class_label_values`
in `main/gen_class_info_<dataset>.m` of guosheng/refinenet), and the
authors' label map is `label_values[argmax over all K channels]`. Some
datasets have a `void` channel (Cityscapes and VOC: the last channel,
label 255; SUN RGB-D and ADE20k: the first channel, label 0). The class
names of ADE20k, SUN RGB-D and PASCAL-Context come from the `.mat` files
the authors ship in `main/` (`class_info_ADE.mat`,
`sunrgbd_class_names.mat`, `pascalcontext_class_names.mat`). Pure Python:
importing this module imports no framework.
"""

import collections

from keras_refinenet.constants import IGNORE_LABEL
from keras_refinenet.labels import (
    CITYSCAPES_CLASS_NAMES,
    CITYSCAPES_PALETTE,
    VOC_CLASS_NAMES,
    voc_palette,
)

VOID_CLASS_NAME = "void"
# The two semantics of the authors' bicubic resizes (`main/my_resize.m`):
# `gpu`, their demo path and released results (one scale factor, then a
# top-left crop), or `cpu` (straight to the target size).
RESIZE_MODES = ("gpu", "cpu")
DEFAULT_RESIZE_MODE = "gpu"

ReleasedDataset = collections.namedtuple(
    "ReleasedDataset",
    [
        "name",
        "file_suffix",
        "class_names",
        "label_values",
        "void_channel",
        "improved_pooling",
        "palette",
        "reported",
    ],
)
ReleasedDataset.__doc__ = """One dataset of the authors' MatConvNet release.

Attributes:
    name: our dataset key, e.g. `"cityscapes"`.
    file_suffix: the authors' file name suffix:
        `refinenet_res{depth}_{file_suffix}.mat`.
    class_names: names of the `K` output channels, void included.
    label_values: label value of each output channel.
    void_channel: index of the void channel, or `None`.
    improved_pooling: whether the released models use improved
        (conv-before-pool) chained residual pooling (guosheng/refinenet
        README, 13 Feb 2018).
    palette: RGB colour of each output channel (the authors' colour map
        indexed by the channel's label value).
    reported: `{depth: text}` accuracy the authors report for the
        dataset, where they report it.
"""

ADE20K_CLASS_NAMES = (
    "wall",
    "building, edifice",
    "sky",
    "floor, flooring",
    "tree",
    "ceiling",
    "road, route",
    "bed ",
    "windowpane, window ",
    "grass",
    "cabinet",
    "sidewalk, pavement",
    "person, individual, someone, somebody, mortal, soul",
    "earth, ground",
    "door, double door",
    "table",
    "mountain, mount",
    "plant, flora, plant life",
    "curtain, drape, drapery, mantle, pall",
    "chair",
    "car, auto, automobile, machine, motorcar",
    "water",
    "painting, picture",
    "sofa, couch, lounge",
    "shelf",
    "house",
    "sea",
    "mirror",
    "rug, carpet, carpeting",
    "field",
    "armchair",
    "seat",
    "fence, fencing",
    "desk",
    "rock, stone",
    "wardrobe, closet, press",
    "lamp",
    "bathtub, bathing tub, bath, tub",
    "railing, rail",
    "cushion",
    "base, pedestal, stand",
    "box",
    "column, pillar",
    "signboard, sign",
    "chest of drawers, chest, bureau, dresser",
    "counter",
    "sand",
    "sink",
    "skyscraper",
    "fireplace, hearth, open fireplace",
    "refrigerator, icebox",
    "grandstand, covered stand",
    "path",
    "stairs, steps",
    "runway",
    "case, display case, showcase, vitrine",
    "pool table, billiard table, snooker table",
    "pillow",
    "screen door, screen",
    "stairway, staircase",
    "river",
    "bridge, span",
    "bookcase",
    "blind, screen",
    "coffee table, cocktail table",
    "toilet, can, commode, crapper, pot, potty, stool, throne",
    "flower",
    "book",
    "hill",
    "bench",
    "countertop",
    "stove, kitchen stove, range, kitchen range, cooking stove",
    "palm, palm tree",
    "kitchen island",
    "computer, computing machine, computing device, data processor, electronic computer, information processing system",  # noqa: E501
    "swivel chair",
    "boat",
    "bar",
    "arcade machine",
    "hovel, hut, hutch, shack, shanty",
    "bus, autobus, coach, charabanc, double-decker, jitney, motorbus, motorcoach, omnibus, passenger vehicle",  # noqa: E501
    "towel",
    "light, light source",
    "truck, motortruck",
    "tower",
    "chandelier, pendant, pendent",
    "awning, sunshade, sunblind",
    "streetlight, street lamp",
    "booth, cubicle, stall, kiosk",
    "television receiver, television, television set, tv, tv set, idiot box, boob tube, telly, goggle box",  # noqa: E501
    "airplane, aeroplane, plane",
    "dirt track",
    "apparel, wearing apparel, dress, clothes",
    "pole",
    "land, ground, soil",
    "bannister, banister, balustrade, balusters, handrail",
    "escalator, moving staircase, moving stairway",
    "ottoman, pouf, pouffe, puff, hassock",
    "bottle",
    "buffet, counter, sideboard",
    "poster, posting, placard, notice, bill, card",
    "stage",
    "van",
    "ship",
    "fountain",
    "conveyer belt, conveyor belt, conveyer, conveyor, transporter",
    "canopy",
    "washer, automatic washer, washing machine",
    "plaything, toy",
    "swimming pool, swimming bath, natatorium",
    "stool",
    "barrel, cask",
    "basket, handbasket",
    "waterfall, falls",
    "tent, collapsible shelter",
    "bag",
    "minibike, motorbike",
    "cradle",
    "oven",
    "ball",
    "food, solid food",
    "step, stair",
    "tank, storage tank",
    "trade name, brand name, brand, marque",
    "microwave, microwave oven",
    "pot, flowerpot",
    "animal, animate being, beast, brute, creature, fauna",
    "bicycle, bike, wheel, cycle ",
    "lake",
    "dishwasher, dish washer, dishwashing machine",
    "screen, silver screen, projection screen",
    "blanket, cover",
    "sculpture",
    "hood, exhaust hood",
    "sconce",
    "vase",
    "traffic light, traffic signal, stoplight",
    "tray",
    "ashcan, trash can, garbage can, wastebin, ash bin, ash-bin, ashbin, dustbin, trash barrel, trash bin",  # noqa: E501
    "fan",
    "pier, wharf, wharfage, dock",
    "crt screen",
    "plate",
    "monitor, monitoring device",
    "bulletin board, notice board",
    "shower",
    "radiator",
    "glass, drinking glass",
    "clock",
    "flag",
)

SUNRGBD_CLASS_NAMES = (
    "wall",
    "floor",
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "blinds",
    "desk",
    "shelves",
    "curtain",
    "dresser",
    "pillow",
    "mirror",
    "floor_mat",
    "clothes",
    "ceiling",
    "books",
    "fridge",
    "tv",
    "paper",
    "towel",
    "shower_curtain",
    "box",
    "whiteboard",
    "person",
    "night_stand",
    "toilet",
    "sink",
    "lamp",
    "bathtub",
    "bag",
)

PASCAL_CONTEXT_CLASS_NAMES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "table",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
    "bag",
    "bed",
    "bench",
    "book",
    "building",
    "cabinet",
    "ceiling",
    "cloth",
    "computer",
    "cup",
    "door",
    "fence",
    "floor",
    "flower",
    "food",
    "grass",
    "ground",
    "keyboard",
    "light",
    "mountain",
    "mouse",
    "curtain",
    "platform",
    "sign",
    "plate",
    "road",
    "rock",
    "shelves",
    "sidewalk",
    "sky",
    "snow",
    "bedclothes",
    "track",
    "tree",
    "truck",
    "wall",
    "water",
    "window",
    "wood",
)

NYUD_CLASS_NAMES = (
    "wall",
    "floor",
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "blinds",
    "desk",
    "shelves",
    "curtain",
    "dresser",
    "pillow",
    "mirror",
    "floor mat",
    "clothes",
    "ceiling",
    "books",
    "refridgerator",
    "television",
    "paper",
    "towel",
    "shower curtain",
    "box",
    "whiteboard",
    "person",
    "night stand",
    "toilet",
    "sink",
    "lamp",
    "bathtub",
    "bag",
    "otherstructure",
    "otherfurniture",
    "otherprop",
)

PERSON_PARTS_CLASS_NAMES = (
    "background",
    "head",
    "torso",
    "upper arms",
    "lower arms",
    "upper legs",
    "lower legs",
)

_PAPER = "CVPR 2017 paper"


def _palette(label_values, colormap):
    return tuple(
        tuple(int(c) for c in colormap[value]) for value in label_values
    )


def _voc_palette(label_values):
    return _palette(label_values, voc_palette())


def _dataset(name, file_suffix, class_names, label_values, **fields):
    if len(class_names) != len(label_values):
        raise ValueError(
            f"{name}: {len(class_names)} class names for "
            f"{len(label_values)} label values."
        )
    void = fields.pop("void_channel", None)
    palette = fields.pop("palette", None) or _voc_palette(label_values)
    return ReleasedDataset(
        name=name,
        file_suffix=file_suffix,
        class_names=tuple(class_names),
        label_values=tuple(label_values),
        void_channel=void,
        palette=palette,
        **fields,
    )


_CITYSCAPES_LABELS = tuple(range(len(CITYSCAPES_CLASS_NAMES))) + (IGNORE_LABEL,)

RELEASED_DATASETS = {
    dataset.name: dataset
    for dataset in (
        _dataset(
            "cityscapes",
            "cityscapes",
            CITYSCAPES_CLASS_NAMES + (VOID_CLASS_NAME,),
            _CITYSCAPES_LABELS,
            void_channel=len(CITYSCAPES_CLASS_NAMES),
            improved_pooling=False,
            palette=CITYSCAPES_PALETTE + ((0, 0, 0),),
            reported={101: f"73.6 mIoU, Cityscapes test ({_PAPER})"},
        ),
        _dataset(
            "voc2012",
            "voc2012",
            VOC_CLASS_NAMES + (VOID_CLASS_NAME,),
            tuple(range(len(VOC_CLASS_NAMES))) + (IGNORE_LABEL,),
            void_channel=len(VOC_CLASS_NAMES),
            improved_pooling=False,
            reported={
                101: f"82.4 mIoU, PASCAL VOC 2012 test ({_PAPER})",
                152: f"83.4 mIoU, PASCAL VOC 2012 test ({_PAPER})",
            },
        ),
        _dataset(
            "nyud",
            "nyud",
            NYUD_CLASS_NAMES + (VOID_CLASS_NAME,),
            tuple(range(1, len(NYUD_CLASS_NAMES) + 1)) + (IGNORE_LABEL,),
            void_channel=len(NYUD_CLASS_NAMES),
            improved_pooling=True,
            reported={152: f"46.5 mIoU, NYUDv2 test, multi-scale ({_PAPER})"},
        ),
        _dataset(
            "person_parts",
            "person_parts",
            PERSON_PARTS_CLASS_NAMES,
            tuple(range(len(PERSON_PARTS_CLASS_NAMES))),
            improved_pooling=True,
            reported={101: f"68.6 mIoU, PASCAL-Person-Part test ({_PAPER})"},
        ),
        _dataset(
            "pascal_context",
            "pascalcontext",
            PASCAL_CONTEXT_CLASS_NAMES,
            tuple(range(len(PASCAL_CONTEXT_CLASS_NAMES))),
            improved_pooling=True,
            reported={
                101: f"47.1 mIoU, PASCAL-Context test ({_PAPER})",
                152: f"47.3 mIoU, PASCAL-Context test ({_PAPER})",
            },
        ),
        _dataset(
            "sunrgbd",
            "sunrgbd",
            (VOID_CLASS_NAME,) + SUNRGBD_CLASS_NAMES,
            tuple(range(len(SUNRGBD_CLASS_NAMES) + 1)),
            void_channel=0,
            improved_pooling=True,
            reported={152: f"45.9 mIoU, SUN RGB-D test ({_PAPER})"},
        ),
        _dataset(
            "ade20k",
            "ade",
            (VOID_CLASS_NAME,) + ADE20K_CLASS_NAMES,
            tuple(range(len(ADE20K_CLASS_NAMES) + 1)),
            void_channel=0,
            improved_pooling=True,
            reported={
                101: f"40.20 mIoU, ADE20K val ({_PAPER})",
                152: f"40.70 mIoU, ADE20K val ({_PAPER})",
            },
        ),
    )
}
RELEASED_DEPTHS = (101, 152)


def released_file_name(dataset, depth):
    """The file name the authors publish for one released model.

    Args:
        dataset: a key of `RELEASED_DATASETS`.
        depth: ResNet depth, 101 or 152.

    Returns:
        The `.mat` file name.

    Example:

    >>> released_file_name("cityscapes", 101)
    'refinenet_res101_cityscapes.mat'
    """
    if dataset not in RELEASED_DATASETS:
        raise ValueError(
            f"`dataset` must be one of {sorted(RELEASED_DATASETS)}. "
            f"Received: dataset={dataset!r}"
        )
    if depth not in RELEASED_DEPTHS:
        raise ValueError(
            f"`depth` must be one of {RELEASED_DEPTHS}. "
            f"Received: depth={depth!r}"
        )
    suffix = RELEASED_DATASETS[dataset].file_suffix
    return f"refinenet_res{depth}_{suffix}.mat"


def channel_labels(dataset, void="label"):
    """Label value per output channel, under a void rule.

    Args:
        dataset: a key of `RELEASED_DATASETS`.
        void: `"label"` keeps the authors' rule (the void channel can win
            the argmax and then gives its label value, e.g. 255 for
            Cityscapes); `"exclude"` drops the void channel, so the label
            map only holds real classes.

    Returns:
        A tuple of label values, one per channel kept.

    Example:

    >>> channel_labels("sunrgbd")[:3]
    (0, 1, 2)
    >>> channel_labels("sunrgbd", void="exclude")[:3]
    (1, 2, 3)
    """
    if void not in VOID_RULES:
        raise ValueError(
            f"`void` must be one of {VOID_RULES}. Received: void={void!r}"
        )
    info = RELEASED_DATASETS[dataset]
    labels = info.label_values
    if void == "exclude" and info.void_channel is not None:
        labels = labels[: info.void_channel] + labels[info.void_channel + 1 :]
    return labels


VOID_RULES = ("label", "exclude")
