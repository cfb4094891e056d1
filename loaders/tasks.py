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

HUB_TASK_IDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "intent": ("multi-class-classification", "intent-classification"),
    "sentiment": ("multi-class-classification", "sentiment-classification"),
})  # fmt: skip
"""The Hub's ``task_ids`` per dimension (its vocabulary names intents and sentiment; the others are multi-class)."""

REDISTRIBUTION = ("open", "unclear", "restricted")


@dataclass(frozen=True)
class License:
    """A corpus' terms (text and video) as its owners publish them, in the Hub's vocabulary.

    ``hub_id`` goes to a card's ``license``; when it is ``"other"``, ``name`` (a slug) and ``url`` go to
    ``license_name`` / ``license_link``, as the Hub expects. ``redistribution`` says whether the terms grant
    redistribution: ``"open"`` (they do), ``"unclear"`` (no license file), ``"restricted"`` (they do not).
    """

    hub_id: str
    name: str | None
    url: str | None
    terms: str
    redistribution: str

    def __post_init__(self) -> None:
        if self.redistribution not in REDISTRIBUTION:
            raise ValueError(f"redistribution must be one of {REDISTRIBUTION}, got {self.redistribution!r}")
        if (self.hub_id == "other") != (self.name is not None):
            raise ValueError(
                f"license_name is required exactly when hub_id is 'other' ({self.hub_id!r}, {self.name!r})"
            )

    @property
    def display(self) -> str:
        """``mit`` / ``other (mintrec-research)``: the id a user looks up."""
        return f"other ({self.name})" if self.hub_id == "other" else self.hub_id


@dataclass(frozen=True)
class VideoPolicy:
    """Whether MMLA's Hub release ships this corpus' clips (``redistributable``), and where to get them if not.

    Restricted corpora are never fetched: the user obtains the videos from the official source under its
    own license and passes their folder (``videos=`` / ``--videos``). ``license`` is the video terms in
    words (kept for messages and cards; :attr:`TaskSpec.license` is the structured form).
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
    license: License
    """The corpus' terms (text and video); see :class:`License`."""
    citation: str
    release_name: str
    """Folder/file stem of the corpus in the MMLA release (``<release_name>_<split>_...``)."""
    homepage: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Alternative spellings (lower-case) -> canonical label."""
    release_dir: str = ""
    """Folder of the corpus in the Hub release ``THUIAR/MMLA-Datasets`` (defaults to ``release_name``)."""
    dimension_aliases: tuple[str, ...] = ()
    """Other names upstream files give the dimension in prompts and answers (Anno-MI text files: ``talk_type``)."""
    clip_prefixes: tuple[str, ...] = ()
    """File-name prefixes of this corpus' clips (``<prefix>_<id>.mp4``; defaults to ``release_name``). The
    dialogue-act corpora also accept their source corpus' prefix, which the upstream text files use."""
    hub_task_ids: tuple[str, ...] = ()
    """The Hub's ``task_ids`` for this task's dataset cards (defaults to its dimension's :data:`HUB_TASK_IDS`)."""

    def __post_init__(self) -> None:
        if not self.release_dir:
            object.__setattr__(self, "release_dir", self.release_name)
        if not self.clip_prefixes:
            object.__setattr__(self, "clip_prefixes", (self.release_name,))
        if not self.hub_task_ids:
            object.__setattr__(self, "hub_task_ids", HUB_TASK_IDS.get(self.dimension, ("multi-class-classification",)))

    @property
    def dimension_names(self) -> tuple[str, ...]:
        """Every spelling of the dimension upstream files use ("dialogue act", "dialogue_act", "talk_type")."""
        return tuple(dict.fromkeys((self.dimension_text, self.dimension, *self.dimension_aliases)))

    @property
    def clip_example(self) -> str:
        """The expected clip file name, for messages (``MOSI_<id>.mp4``)."""
        return f"{self.release_name}_<id>.mp4"

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
MINTREC2_LABELS = (  # alphabetical, as upstream `labels_map` and LLaMA-Factory files list them
    "acknowledge", "advise", "agree", "apologise", "arrange", "ask for help", "asking for opinions", "care",
    "comfort", "complain", "confirm", "criticize", "doubt", "emphasize", "explain", "flaunt", "greet", "inform",
    "introduce", "invite", "joke", "leave", "oppose", "plan", "praise", "prevent", "refuse", "taunt", "thank", "warn",
)  # fmt: skip
DA_LABELS = (
    "greeting", "question", "answer", "statement-opinion", "statement-non-opinion",
    "apology", "command", "agreement", "disagreement", "acknowledge", "backchannel", "others",
)  # fmt: skip
INTENT_ALIASES = {"apologize": "apologise", "criticise": "criticize", "ask for opinions": "asking for opinions",
                  "ask for opinion": "asking for opinions", "emphasise": "emphasize"}  # fmt: skip
DA_ALIASES = {"statement opinion": "statement-opinion", "statement non-opinion": "statement-non-opinion",
              "statement-non opinion": "statement-non-opinion", "other": "others", "greet": "greeting"}  # fmt: skip


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

_SHIPPED = "Redistributed by the MMLA Hub release (THUIAR/MMLA-Datasets) under the corpus' own terms"

# Licenses, as the owners publish them (SPEC.md, "Licenses"). Slugs for "other" are ours: the Hub asks for one.
LICENSES: Mapping[str, License] = MappingProxyType({
    "mintrec": License("other", "mintrec-research", "https://github.com/thuiar/MIntRec",
                       "Code under MIT; the data (clips of TV series) are freely downloadable for research use, "
                       "with no data license file.", "unclear"),
    "mintrec2": License("cc-by-nc-sa-4.0", None, "https://github.com/thuiar/MIntRec2.0",
                        "CC BY-NC-SA 4.0 (attribution, non-commercial, share alike).", "open"),
    "meld": License("gpl-3.0", None, "https://github.com/declare-lab/MELD",
                    "GPL-3.0, as published in the MELD repository.", "open"),
    "meld_da": License("other", "emotyda-meld-da", "https://github.com/sahatulika15/EMOTyDA",
                       "No license file for the EMOTyDA dialogue-act labels; utterances and videos come from MELD "
                       "(GPL-3.0).", "unclear"),
    "iemocap": License("other", "iemocap-release-form", "https://sail.usc.edu/iemocap/iemocap_release.htm",
                       "Available only under a release form signed with USC SAIL; no redistribution.", "restricted"),
    "iemocap_da": License("other", "iemocap-release-form", "https://sail.usc.edu/iemocap/iemocap_release.htm",
                          "IEMOCAP's signed USC SAIL release form (no redistribution); dialogue-act labels from "
                          "EMOTyDA, with no license file.", "restricted"),
    "mosi": License("other", "cmu-mosi", "http://multicomp.cs.cmu.edu/resources/cmu-mosi-dataset/",
                    "Raw videos are not shared, for the creators' privacy (CMU-MultimodalSDK FAQ); MMLA releases the "
                    "text only.", "restricted"),
    "chsims2": License("other", "ch-sims-v2", "https://github.com/thuiar/ch-sims-v2",
                       "No license file; the data are downloaded from the authors (github.com/thuiar/ch-sims-v2).",
                       "unclear"),
    "urfunny2": License("cc-by-nc-nd-4.0", None, "https://www.ted.com/about/our-organization/our-policies-terms/ted-talks-usage-policy",
                        "The TED talks are CC BY-NC-ND 4.0 (non-commercial, no derivatives); UR-FUNNY has no license "
                        "file.", "open"),
    "mustard": License("mit", None, "https://github.com/soujanyaporia/MUStARD",
                       "MIT, as published in the MUStARD repository.", "open"),
    "annomi": License("other", "anno-mi", "https://github.com/uccollab/AnnoMI",
                      "No license file; the authors call the data \"publicly and freely accessible\"; the videos "
                      "belong to their YouTube/Vimeo publishers.", "unclear"),
})  # fmt: skip


def _restricted(how: str, example: str) -> str:
    return (f"{how} Save one clip per utterance as <videos folder>/<prefix>_<id>.mp4, named after the TSV `id` "
            f"(e.g. {example}); subfolders are fine.")  # fmt: skip


def _iemocap_policy(prefix: str) -> VideoPolicy:
    return VideoPolicy(
        redistributable=False,
        license="IEMOCAP release form (USC SAIL; research only, no redistribution)",
        source_url="https://sail.usc.edu/iemocap/iemocap_release.htm",
        instructions=_restricted("Request IEMOCAP from USC SAIL (signed release form), then cut the utterance clips.",
                                 f"{prefix}_Ses01F_script01_1_F000.mp4"),
    )  # fmt: skip


_TASK_LIST = [
    TaskSpec(
        key="mintrec", dataset="MIntRec", dimension="intent", labels=MINTREC_LABELS,
        splits=_splits(1334, 445, 445), language="en", source="TV series",
        video=VideoPolicy(True, _SHIPPED), license=LICENSES["mintrec"], citation=_CITATIONS["mintrec"],
        release_name="MIntRec", homepage="https://github.com/thuiar/MIntRec", aliases=INTENT_ALIASES,
    ),
    TaskSpec(
        key="mintrec2", dataset="MIntRec2.0", dimension="intent", labels=MINTREC2_LABELS,
        splits=_splits(6165, 1106, 2033), language="en", source="TV series",
        video=VideoPolicy(True, _SHIPPED), license=LICENSES["mintrec2"], citation=_CITATIONS["mintrec2"],
        release_name="MIntRec2.0", homepage="https://github.com/thuiar/MIntRec2.0", aliases=INTENT_ALIASES,
    ),
    TaskSpec(
        key="meld_da", dataset="MELD-DA", dimension="dialogue_act", labels=DA_LABELS,
        splits=_splits(6992, 999, 1998), language="en", source="TV series",
        video=VideoPolicy(True, _SHIPPED), license=LICENSES["meld_da"], citation=_CITATIONS["emotyda"],
        release_name="MELD-DA", homepage="https://github.com/sahatulika15/EMOTyDA", aliases=DA_ALIASES,
        clip_prefixes=("MELD-DA", "MELD"),
    ),
    TaskSpec(
        key="iemocap_da", dataset="IEMOCAP-DA", dimension="dialogue_act", labels=DA_LABELS,
        splits=_splits(6590, 942, 1884), language="en", source="scripted",
        video=_iemocap_policy("IEMOCAP-DA"), license=LICENSES["iemocap_da"], citation=_CITATIONS["emotyda"],
        release_name="IEMOCAP-DA", homepage="https://github.com/sahatulika15/EMOTyDA", aliases=DA_ALIASES,
        clip_prefixes=("IEMOCAP-DA", "IEMOCAP"),
    ),
    TaskSpec(
        key="meld", dataset="MELD", dimension="emotion",
        labels=("neutral", "surprise", "fear", "sadness", "joy", "anger", "disgust"),
        splits=_splits(9989, 1109, 2610), language="en", source="TV series",
        video=VideoPolicy(True, _SHIPPED), license=LICENSES["meld"], citation=_CITATIONS["meld"],
        release_name="MELD", homepage="https://affective-meld.github.io/",
        aliases={"sad": "sadness", "angry": "anger", "happy": "joy", "surprised": "surprise", "fearful": "fear",
                 "disgusted": "disgust"},
    ),
    TaskSpec(
        key="iemocap", dataset="IEMOCAP", dimension="emotion",
        labels=("angry", "happy", "sad", "neutral", "frustrated", "excited"),
        splits=_splits(5354, 528, 1650), language="en", source="scripted",
        video=_iemocap_policy("IEMOCAP"), license=LICENSES["iemocap"], citation=_CITATIONS["iemocap"], release_name="IEMOCAP",
        homepage="https://sail.usc.edu/iemocap/",
        aliases={"anger": "angry", "happiness": "happy", "sadness": "sad", "frustration": "frustrated",
                 "excitement": "excited"},
    ),
    TaskSpec(
        key="mosi", dataset="MOSI", dimension="sentiment", labels=("positive", "negative"),
        splits=_splits(1284, 229, 686), language="en", source="YouTube",
        video=VideoPolicy(
            redistributable=False,
            license="CMU-MOSI: raw videos are not shared (creators' privacy); MMLA releases text only",
            source_url="http://multicomp.cs.cmu.edu/resources/cmu-mosi-dataset/",
            instructions=_restricted("CMU does not share the raw MOSI videos; if you hold them (Raw/Video/Segmented), "
                                     "use the segment clips.", "MOSI_WKA5OygbEKI$_$20.mp4: MOSI ids contain `$_$`"),
        ),
        license=LICENSES["mosi"], citation=_CITATIONS["mosi"], release_name="MOSI",
        homepage="http://multicomp.cs.cmu.edu/resources/cmu-mosi-dataset/",
    ),
    TaskSpec(
        key="chsims2", dataset="CH-SIMS v2.0", dimension="sentiment", labels=("neutral", "positive", "negative"),
        splits=_splits(2722, 647, 1034), language="zh", source="films/TV",
        video=VideoPolicy(True, _SHIPPED), license=LICENSES["chsims2"], citation=_CITATIONS["chsims2"],
        release_name="Ch-sims", release_dir="CH-SIMSv2.0", homepage="https://github.com/thuiar/ch-sims-v2",
    ),
    TaskSpec(
        key="urfunny2", dataset="UR-FUNNY-v2", dimension="speaking_style", labels=("humorous", "serious"),
        splits=_splits(7612, 980, 994), language="en", source="TED",
        video=VideoPolicy(True, _SHIPPED), license=LICENSES["urfunny2"], citation=_CITATIONS["urfunny2"],
        release_name="UR-FUNNY", release_dir="UR-FUNNY-v2", homepage="https://github.com/ROC-HCI/UR-FUNNY",
        aliases={"humor": "humorous", "funny": "humorous"},
    ),
    TaskSpec(
        key="mustard", dataset="MUStARD", dimension="speaking_style", labels=("sincere", "sarcastic"),
        splits=_splits(414, 138, 138), language="en", source="TV series",
        video=VideoPolicy(True, _SHIPPED), license=LICENSES["mustard"], citation=_CITATIONS["mustard"],
        release_name="MUStARD", homepage="https://github.com/soujanyaporia/MUStARD", aliases={"sarcasm": "sarcastic"},
    ),
    TaskSpec(
        key="annomi_client", dataset="Anno-MI (client)", dimension="communication_behavior",
        labels=("neutral", "change", "sustain"),
        splits=_splits(3123, 461, 1129), language="en", source="YouTube/Vimeo",
        video=VideoPolicy(True, _SHIPPED, source_url="https://github.com/uccollab/AnnoMI"),
        license=LICENSES["annomi"], citation=_CITATIONS["annomi"], release_name="AnnoMi-client",
        homepage="https://github.com/uccollab/AnnoMI", dimension_aliases=("talk_type",),
    ),
    TaskSpec(
        key="annomi_therapist", dataset="Anno-MI (therapist)", dimension="communication_behavior",
        labels=("question", "therapist_input", "reflection", "other"),
        splits=_splits(3161, 472, 1140), language="en", source="YouTube/Vimeo",
        video=VideoPolicy(True, _SHIPPED, source_url="https://github.com/uccollab/AnnoMI"),
        license=LICENSES["annomi"], citation=_CITATIONS["annomi"], release_name="AnnoMi-therapist",
        homepage="https://github.com/uccollab/AnnoMI", dimension_aliases=("therapist_behaviour",),
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
