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
    Metrics,
    RoundRecord,
    TrainConfig,
    evaluate,
    federated_train,
    predict,
    roc_auc,
    train_batch,
    train_local,
)

__all__ = [
    "AGGREGATION_RULES",
    "AggregationRule",
    "AnomalyNet",
    "BlobNotFound",
    "Dataset",
    "FedAvg",
    "FederatedHistory",
    "GeneratorConfig",
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
    "TrainConfig",
    "TrimmedMean",
    "aggregate",
    "augment_virtual",
    "build_network",
    "concat_datasets",
    "deserialize_state",
    "evaluate",
    "federated_train",
    "fit_normaliser",
    "generate_streams",
    "get_rule",
    "init_model",
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
