package node

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const (
	metricsNamespace = "cloudprovider_aws"
	metricsSubsystem = "node"
)

var (
	nodesInitialized = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name:           "initialized_total",
		Help:           "Nodes whose uninitialized taint the controller removed.",
		StabilityLevel: metrics.ALPHA,
	})
	initLatency = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name:           "initialization_latency_seconds",
		Help:           "Time from Node creation to removal of the uninitialized taint.",
		Buckets:        metrics.ExponentialBuckets(0.25, 2, 14),
		StabilityLevel: metrics.ALPHA,
	})
	assignments = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name:           "ipv6_assignments_total",
		Help:           "IPv6 assignments on primary ENIs by kind (address, prefix) and outcome (success, throttled, failed, unknown).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind", "outcome"})
	apiWrites = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name:           "api_writes_total",
		Help:           "Successful Node writes by kind (status, spec, intent, labels).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind"})
	stateEntries = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: metricsNamespace, Subsystem: "node_controller",
		Name:           "state_entries",
		Help:           "Entries in the node controller's per-node maps (memo: assignments of nodes not yet initialized; done: initializations the informer has not shown yet; gone: initialized nodes whose published IPv6 address EC2 did not show; status: status writes of nodes not yet initialized).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"map"})
	syncErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name:           "sync_errors_total",
		Help:           "Failed node syncs by reason (the Node event reason).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
)

var registerOnce sync.Once

func registerMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(nodesInitialized, initLatency, assignments, apiWrites, syncErrors, stateEntries)
	})
}
