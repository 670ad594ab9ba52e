"""Every name the operator writes or reads on objects it does not define the schema of: labels,
annotations, MLflow tags, condition types and reasons. One place, so a rename is one line and a
reader sees at once which strings are part of the operator's contract with its users."""

from __future__ import annotations

from . import FIELD_MANAGER, GROUP

# -- labels -----------------------------------------------------------------------------------------
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
NAME_LABEL = "app.kubernetes.io/name"  # the recommended labels, on every child
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF_LABEL = "app.kubernetes.io/part-of"
APP_VERSION_LABEL = "app.kubernetes.io/version"
MANAGED = {MANAGED_BY_LABEL: FIELD_MANAGER}  # the selector of every child's watch
OWNER_LABEL = f"{GROUP}/llmdeployment"  # on every child: the LLMDeployment it belongs to
MODEL_VERSION_LABEL = f"{GROUP}/model-version"
# Pods carry the name of the Service that sends them traffic; a canary under replica-ratio routing
# carries its stable's name (from SERVES_FOR_ANNOTATION on the canary LLMDeployment) and so joins it.
SERVES_LABEL = f"{GROUP}/serves"
CANARY_OF_LABEL = f"{GROUP}/canary-of"  # on a canary LLMDeployment: its stable
ROLLOUT_LABEL = f"{GROUP}/canaryrollout"  # on a canary LLMDeployment: the rollout that made it
EVALUATION_OF_LABEL = f"{GROUP}/evaluation-of"  # on an evaluation Job: the rollout it judges
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # a node label, read by the GPU affinity
GATEWAY_LABEL = f"{GROUP}/llmgateway"  # on every LLMGateway child: the gateway it belongs to

# Prometheus's name of OWNER_LABEL on a pod's series (the ServiceMonitor keeps the pod's labels).
OWNER_SERIES_LABEL = "llmops_dev_llmdeployment"
RETRAINING_NAME = "retraining"  # NAME_LABEL of a retraining workload and its pods
# Kueue's, on the workloads the operator hands to it: the LocalQueue, and the uid its Workload names.
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"

# -- labels that are MLflow tags too (one name for both uses) ---------------------------------------
DRIFT_MONITOR_KEY = f"{GROUP}/driftmonitor"  # a retraining workload's and rollout's label; a check run's tag
DRIFT_EVENT_KEY = f"{GROUP}/drift-event"  # the same, and the tag a trainer puts on its version

# -- MLflow tags ------------------------------------------------------------------------------------
VERDICT_TAG = f"{GROUP}/verdict"  # on a model version a rollout rejected
REJECTED = "rejected"  # its value
EVALUATION_TAG = (
    f"{GROUP}/evaluation"  # on a version and its evaluation run: passed, failed (or inconclusive)
)
EVALUATION_KEY_TAG = f"{GROUP}/evaluation-key"  # on an evaluation run: which evaluation it is
EVALUATION_READY_TAG = f"{GROUP}/evaluation-ready"  # on an evaluation run: its inputs are logged
EVALUATION_RUN_TAG = f"{GROUP}/evaluation-run"  # on a version: the run that evaluated it
EXPERIMENT_KEY_TAG = f"{GROUP}/experiment-key"  # on an experiment run: which decision it is

# -- annotations ------------------------------------------------------------------------------------
SERVES_FOR_ANNOTATION = f"{GROUP}/serves-for"
REQUEST_ANNOTATION = f"{GROUP}/request"  # ``verb`` or ``verb:nonce``, set by ``kubectl llmops``
LAST_HANDLED_ANNOTATION = f"{GROUP}/last-handled-configuration"  # kopf's, under our prefix
KUBECTL_LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
KOPF_PREFIX = GROUP  # kopf's progress and diff-base annotations
FINALIZER = f"{GROUP}/finalizer"
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"  # on a gateway's pods: the config they run
SCRAPE_ANNOTATION = "prometheus.io/scrape"  # on the Service, for scrapers without ServiceMonitors
SCRAPE_PORT_ANNOTATION = "prometheus.io/port"
SCRAPE_PATH_ANNOTATION = "prometheus.io/path"

# -- HTTPRoute rules the operator owns on a user's route ------------------------------------------
HEADER_RULE_PREFIX = "llmops-canary-header"  # rules[].name of a setHeaderRoute step's rules

# -- condition types --------------------------------------------------------------------------------
READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
MODEL_RESOLVED = "ModelResolved"
SERVICE_MONITOR_READY = "ServiceMonitorReady"
INFERENCE_POOL_READY = "InferencePoolReady"
PAUSED = "Paused"
PROMOTED = "Promoted"
ROLLED_BACK = "RolledBack"
DRIFTED = "Drifted"
REPORTED = "Reported"
RETRAINED = "Retrained"
CONFIG_APPLIED = "ConfigApplied"  # LLMGateway: its children carry the config of this generation

# -- condition reasons (and Event reasons of the same name) -----------------------------------------
INVALID_SPEC = "InvalidSpec"
# LLMDeployment: the model
DIRECT_SOURCE = "DirectSource"
RESOLVING = "Resolving"
RESOLVED = "Resolved"
REGISTRY_UNAVAILABLE = "RegistryUnavailable"
MODEL_NOT_FOUND = "ModelNotFound"
MODEL_VERSION_CHANGED = "ModelVersionChanged"
# LLMDeployment: serving
CREATING = "Creating"
SCALED_TO_ZERO = "ScaledToZero"
AVAILABLE = "Available"
PENDING = "Pending"
ROLLOUT_COMPLETE = "RolloutComplete"
ROLLING_OUT = "RollingOut"
AS_EXPECTED = "AsExpected"
MODEL_LOADING = "ModelLoading"
INSUFFICIENT_GPU = "InsufficientGPU"
CRASH_LOOPING = "CrashLooping"
IMAGE_PULL_FAILED = "ImagePullFailed"
UNSCHEDULABLE = "Unschedulable"
CRD_NOT_INSTALLED = "CRDNotInstalled"
CREATED = "Created"
APPLIED = "Applied"  # an Event: children written
# CanaryRollout: why it waits (phase Waiting, condition Progressing False)
WAITING = "Waiting"
WAITING_FOR_ROLLOUT = "WaitingForRollout"
TARGET_NOT_FOUND = "TargetNotFound"
INVALID_TARGET = "InvalidTarget"
TARGET_AUTOSCALES = "TargetAutoscales"
INVALID_ANALYSIS = "InvalidAnalysis"
WAITING_FOR_TARGET = "WaitingForTarget"
# CanaryRollout: steps, pauses and endings
STEP_IN_PROGRESS = "StepInProgress"
WAITING_FOR_PROMOTE = "WaitingForPromote"
PROMOTING = "Promoting"
NOT_PAUSED = "NotPaused"
NOT_PROMOTED = "NotPromoted"
NOT_ROLLED_BACK = "NotRolledBack"
ABORTED = "Aborted"
ANALYSIS_FAILED = "AnalysisFailed"
FAILED_FAST = "FailedFast"  # rolled back by the fast-fail watch between measurements
MANUAL = "Manual"  # pausedReason of a pause by request
NO_DATA = "NoData"
METRICS_UNAVAILABLE = "MetricsUnavailable"
EVALUATION_FAILED = "EvaluationFailed"  # RolledBack's reason: the evaluation gate said no
EVALUATION_INCONCLUSIVE = "EvaluationInconclusive"  # pausedReason: no verdict (judge away, Job failed)
INVALID_EVALUATION = "InvalidEvaluation"  # the dataset cannot be read
# DriftMonitor: the check
CHECKED = "Checked"
DRIFT = "Drift"
NO_DRIFT = "NoDrift"
QUERY_FAILED = "QueryFailed"
INVALID_DATASET = "InvalidDataset"
DATASET_NOT_FOUND = "DatasetNotFound"
LOGGED = "Logged"
ENGINE_NOT_INSTALLED = "EngineNotInstalled"
# DriftMonitor: the retraining and its rollout
QUEUED = "Queued"
JOB_RUNNING = "JobRunning"
JOB_SUCCEEDED = "JobSucceeded"
JOB_FAILED = "JobFailed"
WAITING_FOR_MODEL_VERSION = "WaitingForModelVersion"
ROLLOUT_CREATED = "RolloutCreated"
# DriftMonitor: Events
DRIFT_DETECTED = "DriftDetected"
DRIFT_ENDED = "DriftEnded"
RETRAINING_STARTED = "RetrainingStarted"
RETRAINING_SUCCEEDED = "RetrainingSucceeded"
RETRAINING_FAILED = "RetrainingFailed"
# CanaryRollout: Events
STARTED = "Started"
EVALUATION_STARTED = "EvaluationStarted"
EVALUATION_PASSED = "EvaluationPassed"
RETRY = "Retry"
PAUSED_EVENT = "Paused"
RESUMED = "Resumed"
PROMOTE = "Promote"
BANDIT_MOVED = "BanditMoved"  # Event: a bandit experiment changed the canary weight
EXPERIMENT_DECIDED = "ExperimentDecided"  # Event: an experiment step's comparison
WEIGHT_SET = "WeightSet"
COMPLETED = "Completed"
ALIAS_MOVED = "AliasMoved"
CANARY_REMOVED = "CanaryRemoved"  # after a rollback: the canary lost its traffic
STABLE_RESTORED = "StableRestored"  # after a rollback: the stable side has its replicas Ready again
# LLMGateway
BACKEND_NOT_FOUND = "BackendNotFound"  # a route's LLMDeployment does not exist
BACKEND_NOT_READY = "BackendNotReady"
SECRET_NOT_FOUND = "SecretNotFound"
ROUTES_READY = "RoutesReady"
NO_THROUGHPUT = "NoThroughput"  # a self-hosted route served no tokens in the window: no price yet


def canary_name(target: str) -> str:
    """The canary LLMDeployment of a rollout of ``target`` (and so its Deployment and Service)."""
    return f"{target}-canary"
