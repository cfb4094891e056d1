"""The twelve MMLA tasks as data.

Everything that differs between corpora lives here, so the builder, the prompts,
the metrics and the cards never branch on a dataset name. Adding a corpus means
adding one :class:`TaskSpec` (and a reader in ``sources/`` only if its release
layout is new).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

MMLA_CITATION = """@article{zhang2025mmla,
  title={Can Large Language Models Help Multimodal Language Analysis? MMLA: A Comprehensive Benchmark},
  author={Zhang, Hanlei and Li, Zhuohang and Zhu, Yeshuang and Xu, Hua and Wang, Peiwu and Zhu, Haige and Zhou, Jie and Zhang, Jinchao},
  journal={arXiv preprint arXiv:2504.16427},
  year={2025}
}"""

MMLA_HUB_REPO = "THUIAR/MMLA-Datasets"
"""The Hub dataset that redistributes the MMLA release (texts and, where allowed, videos)."""

DIMENSIONS: tuple[str, ...] = (
    "intent",
    "emotion",
    "dialogue_act",
    "sentiment",
    "speaking_style",
    "communication_behavior",
)


@dataclass(frozen=True)
class VideoPolicy:
    """Whether a corpus' videos may be downloaded from the MMLA Hub release.

    Restricted corpora are never fetched: the user obtains the videos from the
    official source under its own license and points ``manual_dir`` at them.
    """

    redistributable: bool
    license: str
    source_url: str | None = None
    instructions: str = ""


@dataclass(frozen=True, eq=False)  # identity hash: specs are singletons in TASKS
class TaskSpec:
    key: str
    dataset: str
    dimension: str
    labels: tuple[str, ...]
    splits: Mapping[str, int]
    language: str
    source: str
    video: VideoPolicy
    citation: str
    release_name: str
    """Folder/file stem of the corpus in the MMLA release (``<release_name>_<split>_...``)."""
    homepage: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Alternative spellings (lower-case) -> canonical label."""
    release_dir: str = ""
    """Folder of the corpus in the Hub release ``THUIAR/MMLA-Datasets`` (defaults to ``release_name``)."""

    def __post_init__(self) -> None:
        if not self.release_dir:
            object.__setattr__(self, "release_dir", self.release_name)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def dimension_text(self) -> str:
        """The dimension as it appears in prompts and targets ("dialogue act")."""
        return self.dimension.replace("_", " ")

    def label_id(self, label: str) -> int:
        """Index of a gold label, accepting aliases and any letter case."""
        canon = self.canonical(label)
        if canon is None:
            hint = difflib.get_close_matches(str(label).lower(), self.labels, n=1)
            extra = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(
                f"unknown label {label!r} for task {self.key!r}; expected one of {list(self.labels)}.{extra}"
            )
        return self.labels.index(canon)

    def canonical(self, label: str) -> str | None:
        low = str(label).strip().lower()
        if low in self.labels:
            return low
        return self.aliases.get(low)

    @property
    def surface_forms(self) -> dict[str, str]:
        """Every accepted spelling (canonical and alias) -> canonical label."""
        forms = {label: label for label in self.labels}
        forms.update(self.aliases)
        return forms


def _splits(train: int, validation: int, test: int) -> Mapping[str, int]:
    return MappingProxyType({"train": train, "validation": validation, "test": test})


MINTREC_LABELS = (
    "complain", "praise", "apologise", "thank", "criticize", "agree", "taunt", "flaunt",
    "joke", "oppose", "comfort", "care", "inform", "advise", "arrange", "introduce",
    "leave", "prevent", "greet", "ask for help",
)  # fmt: skip
MINTREC2_LABELS = (
    *MINTREC_LABELS, "doubt", "acknowledge", "refuse", "warn", "emphasize", "asking for opinions",
    "confirm", "explain", "invite", "plan",
)  # fmt: skip
DA_LABELS = (
    "greeting", "question", "answer", "statement-opinion", "statement-non-opinion",
    "apology", "command", "agreement", "disagreement", "acknowledge", "backchannel", "others",
)  # fmt: skip
INTENT_ALIASES = {"apologize": "apologise", "criticise": "criticize", "ask for opinions": "asking for opinions",
                  "ask for opinion": "asking for opinions", "emphasise": "emphasize"}  # fmt: skip
DA_ALIASES = {"statement opinion": "statement-opinion", "statement non-opinion": "statement-non-opinion",
              "statement-non opinion": "statement-non-opinion", "other": "others", "greet": "greeting"}  # fmt: skip

_OPEN = "Redistributed by MMLA under the corpus' research license"

_CITATIONS = {
    "mintrec": "@inproceedings{zhang2022mintrec, title={MIntRec: A New Dataset for Multimodal Intent Recognition}, "
    "author={Zhang, Hanlei and Xu, Hua and Wang, Xin and Zhou, Qianrui and Zhao, Shaojie and Teng, Jiayan}, "
    "booktitle={Proceedings of the 30th ACM International Conference on Multimedia}, year={2022}}",
    "mintrec2": "@inproceedings{zhang2024mintrec2, title={MIntRec2.0: A Large-scale Benchmark Dataset for Multimodal "
    "Intent Recognition and Out-of-scope Detection in Conversations}, author={Zhang, Hanlei and Wang, Xin and Xu, Hua "
    "and Zhou, Qianrui and Gao, Kai and Su, Jianhua and Zhao, Jinyue and Li, Wenrui and Chen, Yanting}, "
    "booktitle={ICLR}, year={2024}}",
    "meld": "@inproceedings{poria2019meld, title={MELD: A Multimodal Multi-Party Dataset for Emotion Recognition in "
    "Conversations}, author={Poria, Soujanya and Hazarika, Devamanyu and Majumder, Navonil and Naik, Gautam and "
    "Cambria, Erik and Mihalcea, Rada}, booktitle={ACL}, year={2019}}",
    "emotyda": "@inproceedings{saha2020emotyda, title={Towards Emotion-aided Multi-modal Dialogue Act Classification}, "
    "author={Saha, Tulika and Patra, Aditya and Saha, Sriparna and Bhattacharyya, Pushpak}, booktitle={ACL}, "
    "year={2020}}",
    "iemocap": "@article{busso2008iemocap, title={IEMOCAP: Interactive emotional dyadic motion capture database}, "
    "author={Busso, Carlos and Bulut, Murtaza and Lee, Chi-Chun and others}, journal={Language Resources and "
    "Evaluation}, volume={42}, pages={335--359}, year={2008}}",
    "mosi": "@article{zadeh2016mosi, title={MOSI: Multimodal Corpus of Sentiment Intensity and Subjectivity Analysis "
    "in Online Opinion Videos}, author={Zadeh, Amir and Zellers, Rowan and Pincus, Eli and Morency, Louis-Philippe}, "
    "journal={arXiv preprint arXiv:1606.06259}, year={2016}}",
    "chsims2": "@inproceedings{liu2022chsims2, title={Make Acoustic and Visual Cues Matter: CH-SIMS v2.0 Dataset and "
    "AV-Mixup Consistent Module}, author={Liu, Yihe and Yuan, Ziqi and Mao, Huisheng and Liang, Zhiyun and Yang, "
    "Wanqiuyue and Qiu, Yuanzhe and Cheng, Tie and Li, Xiaoteng and Xu, Hua and Gao, Kai}, booktitle={ICMI}, "
    "year={2022}}",
    "urfunny2": "@inproceedings{hasan2019urfunny, title={UR-FUNNY: A Multimodal Language Dataset for Understanding "
    "Humor}, author={Hasan, Md Kamrul and Rahman, Wasifur and Zadeh, Amir and Zhong, Jianyuan and Tanveer, Md Iftekhar "
    "and Morency, Louis-Philippe and Hoque, Mohammed}, booktitle={EMNLP-IJCNLP}, year={2019}}",
    "mustard": "@inproceedings{castro2019mustard, title={Towards Multimodal Sarcasm Detection (An _Obviously_ Perfect "
    "Paper)}, author={Castro, Santiago and Hazarika, Devamanyu and P{\\'e}rez-Rosas, Ver{\\'o}nica and Zimmermann, "
    "Roger and Mihalcea, Rada and Poria, Soujanya}, booktitle={ACL}, year={2019}}",
    "annomi": "@inproceedings{wu2022annomi, title={Anno-MI: A Dataset of Expert-Annotated Counselling Dialogues}, "
    "author={Wu, Zixiu and Balloccu, Simone and Kumar, Vivek and Helaoui, Rim and Reiter, Ehud and Reforgiato "
    "Recupero, Diego and Riboni, Daniele}, booktitle={ICASSP}, year={2022}}",
}

_IEMOCAP_POLICY = VideoPolicy(
    redistributable=False,
    license="IEMOCAP release agreement (research only, no redistribution)",
    source_url="https://sail.usc.edu/iemocap/iemocap_release.htm",
    instructions="Request the IEMOCAP release from SAIL (USC), then cut the utterance clips and place them as "
    "<manual_dir>/<clip id>.mp4 (the clip ids are the `video` column of the text release).",
)
_ANNOMI_POLICY = VideoPolicy(
    redistributable=False,
    license="Anno-MI terms of use (videos are owned by their YouTube/Vimeo publishers)",
    source_url="https://github.com/uccollab/AnnoMI",
    instructions="Obtain the counselling videos listed by Anno-MI from their publishers, cut the utterances and place "
    "them as <manual_dir>/<clip id>.mp4.",
)

_TASK_LIST = [
    TaskSpec(
        key="mintrec", dataset="MIntRec", dimension="intent", labels=MINTREC_LABELS,
        splits=_splits(1334, 445, 445), language="en", source="TV series",
        video=VideoPolicy(True, _OPEN), citation=_CITATIONS["mintrec"], release_name="MIntRec",
        homepage="https://github.com/thuiar/MIntRec", aliases=INTENT_ALIASES,
    ),
    TaskSpec(
        key="mintrec2", dataset="MIntRec2.0", dimension="intent", labels=MINTREC2_LABELS,
        splits=_splits(6165, 1106, 2033), language="en", source="TV series",
        video=VideoPolicy(True, _OPEN), citation=_CITATIONS["mintrec2"], release_name="MIntRec2.0",
        homepage="https://github.com/thuiar/MIntRec2.0", aliases=INTENT_ALIASES,
    ),
    TaskSpec(
        key="meld_da", dataset="MELD-DA", dimension="dialogue_act", labels=DA_LABELS,
        splits=_splits(6992, 999, 1998), language="en", source="TV series",
        video=VideoPolicy(True, _OPEN), citation=_CITATIONS["emotyda"], release_name="MELD-DA",
        homepage="https://github.com/sahatulika15/EMOTyDA", aliases=DA_ALIASES,
    ),
    TaskSpec(
        key="iemocap_da", dataset="IEMOCAP-DA", dimension="dialogue_act", labels=DA_LABELS,
        splits=_splits(6590, 942, 1884), language="en", source="scripted",
        video=_IEMOCAP_POLICY, citation=_CITATIONS["emotyda"], release_name="IEMOCAP-DA",
        homepage="https://github.com/sahatulika15/EMOTyDA", aliases=DA_ALIASES,
    ),
    TaskSpec(
        key="meld", dataset="MELD", dimension="emotion",
        labels=("neutral", "surprise", "fear", "sadness", "joy", "anger", "disgust"),
        splits=_splits(9989, 1109, 2610), language="en", source="TV series",
        video=VideoPolicy(True, _OPEN), citation=_CITATIONS["meld"], release_name="MELD",
        homepage="https://affective-meld.github.io/",
        aliases={"sad": "sadness", "angry": "anger", "happy": "joy", "surprised": "surprise", "fearful": "fear",
                 "disgusted": "disgust"},
    ),
    TaskSpec(
        key="iemocap", dataset="IEMOCAP", dimension="emotion",
        labels=("angry", "happy", "sad", "neutral", "frustrated", "excited"),
        splits=_splits(5354, 528, 1650), language="en", source="scripted",
        video=_IEMOCAP_POLICY, citation=_CITATIONS["iemocap"], release_name="IEMOCAP",
        homepage="https://sail.usc.edu/iemocap/",
        aliases={"anger": "angry", "happiness": "happy", "sadness": "sad", "frustration": "frustrated",
                 "excitement": "excited"},
    ),
    TaskSpec(
        key="mosi", dataset="MOSI", dimension="sentiment", labels=("positive", "negative"),
        splits=_splits(1284, 229, 686), language="en", source="YouTube",
        video=VideoPolicy(
            redistributable=False,
            license="CMU-MOSI terms (YouTube videos; MMLA releases text only)",
            source_url="http://multicomp.cs.cmu.edu/resources/cmu-mosi-dataset/",
            instructions="Download CMU-MOSI (Raw/Video/Segmented) from CMU MultiComp and place the segment clips as "
            "<manual_dir>/<clip id>.mp4.",
        ),
        citation=_CITATIONS["mosi"], release_name="MOSI", homepage="http://multicomp.cs.cmu.edu/resources/cmu-mosi-dataset/",
    ),
    TaskSpec(
        key="chsims2", dataset="CH-SIMS v2.0", dimension="sentiment", labels=("positive", "neutral", "negative"),
        splits=_splits(2722, 647, 1034), language="zh", source="films/TV",
        video=VideoPolicy(True, _OPEN), citation=_CITATIONS["chsims2"], release_name="Ch-sims", release_dir="CH-SIMSv2.0",
        homepage="https://github.com/thuiar/ch-sims-v2",
    ),
    TaskSpec(
        key="urfunny2", dataset="UR-FUNNY-v2", dimension="speaking_style", labels=("humorous", "serious"),
        splits=_splits(7612, 980, 994), language="en", source="TED",
        video=VideoPolicy(True, _OPEN), citation=_CITATIONS["urfunny2"], release_name="UR-FUNNY", release_dir="UR-FUNNY-v2",
        homepage="https://github.com/ROC-HCI/UR-FUNNY", aliases={"humor": "humorous", "funny": "humorous"},
    ),
    TaskSpec(
        key="mustard", dataset="MUStARD", dimension="speaking_style", labels=("sincere", "sarcastic"),
        splits=_splits(414, 138, 138), language="en", source="TV series",
        video=VideoPolicy(True, _OPEN), citation=_CITATIONS["mustard"], release_name="MUStARD",
        homepage="https://github.com/soujanyaporia/MUStARD", aliases={"sarcasm": "sarcastic"},
    ),
    TaskSpec(
        key="annomi_client", dataset="Anno-MI (client)", dimension="communication_behavior",
        labels=("change", "neutral", "sustain"),
        splits=_splits(3123, 461, 1129), language="en", source="YouTube/Vimeo",
        video=_ANNOMI_POLICY, citation=_CITATIONS["annomi"], release_name="AnnoMi-client",
        homepage="https://github.com/uccollab/AnnoMI",
    ),
    TaskSpec(
        key="annomi_therapist", dataset="Anno-MI (therapist)", dimension="communication_behavior",
        labels=("question", "therapist_input", "reflection", "other"),
        splits=_splits(3161, 472, 1140), language="en", source="YouTube/Vimeo",
        video=_ANNOMI_POLICY, citation=_CITATIONS["annomi"], release_name="AnnoMi-therapist",
        homepage="https://github.com/uccollab/AnnoMI",
        aliases={"input": "therapist_input", "therapist input": "therapist_input", "others": "other"},
    ),
]  # fmt: skip

TASKS: Mapping[str, TaskSpec] = MappingProxyType({t.key: t for t in _TASK_LIST})
"""The registry: task key -> :class:`TaskSpec`, in the paper's order."""


def get_task(key: str) -> TaskSpec:
    """Look a task up by key, with a did-you-mean hint on typos."""
    try:
        return TASKS[key]
    except KeyError:
        hint = difflib.get_close_matches(key, TASKS, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise KeyError(f"unknown task {key!r}; known tasks: {', '.join(TASKS)}.{extra}") from None


def resolve_tasks(spec: str | Iterable[str] | None) -> list[TaskSpec]:
    """Parse ``"all"``, a dimension name, ``"t1,t2"`` or a list of keys into task specs."""
    if spec is None or spec == "all":
        return list(TASKS.values())
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[TaskSpec] = []
    for name in (n.strip() for n in names):
        if not name:
            continue
        if name in DIMENSIONS:
            out.extend(t for t in TASKS.values() if t.dimension == name)
        else:
            out.append(get_task(name))
    seen: set[str] = set()
    return [t for t in out if not (t.key in seen or seen.add(t.key))]
