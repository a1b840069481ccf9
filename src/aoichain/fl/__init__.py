"""Federated learning between IIoT nodes and their digital twins (knows nothing of chains).

- Streams: :class:`SensorStream`, :func:`read_stream_folder` (SKAB and generic
  CSV), :func:`generate_streams` (drifting production-line streams).
- Privacy: :class:`PrivacyPolicy`, :func:`twin_view` (the only path to the
  virtual space), :func:`augment_virtual`.
- Learning: :func:`make_windows`, :class:`ModelSpec`, :func:`init_model`,
  :func:`train_local` (or :func:`train_batch`, many workers at once with the
  same bytes), :func:`aggregate`, :func:`evaluate`,
  :func:`federated_train`; updates are bytes (:func:`serialize_state`) kept
  in a content-addressed :class:`ModelStore`.
"""

from aoichain.fl.aggregation import (
    AGGREGATION_RULES,
    AggregationRule,
    FedAvg,
    Krum,
    Median,
    MultiKrum,
    NormClip,
    TrimmedMean,
    aggregate,
    get_rule,
    register_rule,
)
from aoichain.fl.data import Dataset, concat_datasets, make_windows
from aoichain.fl.errors import BlobNotFound, InvalidPolicy, InvalidStream, MalformedUpdate
from aoichain.fl.generator import GeneratorConfig, generate_streams, sensor_names
from aoichain.fl.holdout import EvaluationSet, HeldOut, holdout_split
from aoichain.fl.metrics import (
    TARGET_METRICS,
    Metrics,
    TargetStatus,
    average_precision,
    chance_level,
    classification_metrics,
    judge_target,
    roc_auc,
)
from aoichain.fl.model import (
    AnomalyNet,
    ModelSpec,
    build_network,
    deserialize_state,
    fit_normaliser,
    init_model,
    load_network,
    serialize_state,
    sha256_hex,
)
from aoichain.fl.privacy import PrivacyPolicy, Rule, augment_virtual, twin_view
from aoichain.fl.store import ModelStore
from aoichain.fl.streams import SensorStream, read_stream_csv, read_stream_folder
from aoichain.fl.training import (
    FederatedHistory,
    LocalUpdate,
    RoundRecord,
    TrainConfig,
    evaluate,
    federated_train,
    predict,
    train_batch,
    train_local,
)

__all__ = [
    "AGGREGATION_RULES",
    "TARGET_METRICS",
    "AggregationRule",
    "AnomalyNet",
    "BlobNotFound",
    "Dataset",
    "EvaluationSet",
    "FedAvg",
    "FederatedHistory",
    "GeneratorConfig",
    "HeldOut",
    "InvalidPolicy",
    "InvalidStream",
    "Krum",
    "LocalUpdate",
    "MalformedUpdate",
    "Median",
    "Metrics",
    "ModelSpec",
    "ModelStore",
    "MultiKrum",
    "NormClip",
    "PrivacyPolicy",
    "RoundRecord",
    "Rule",
    "SensorStream",
    "TargetStatus",
    "TrainConfig",
    "TrimmedMean",
    "aggregate",
    "augment_virtual",
    "average_precision",
    "build_network",
    "chance_level",
    "classification_metrics",
    "concat_datasets",
    "deserialize_state",
    "evaluate",
    "federated_train",
    "fit_normaliser",
    "generate_streams",
    "get_rule",
    "holdout_split",
    "init_model",
    "judge_target",
    "load_network",
    "make_windows",
    "predict",
    "read_stream_csv",
    "read_stream_folder",
    "register_rule",
    "roc_auc",
    "sensor_names",
    "serialize_state",
    "sha256_hex",
    "train_batch",
    "train_local",
    "twin_view",
]
