package ec2

import (
	"context"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const (
	metricsNamespace = "cloudprovider"
	metricsSubsystem = "aws"
)

var (
	apiRequests = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      metricsNamespace,
		Subsystem:      metricsSubsystem,
		Name:           "api_requests_total",
		Help:           "EC2 API calls by operation and result code (ok or the AWS error code), counted once per call whatever the retries.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"operation", "code"})
	apiAttempts = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      metricsNamespace,
		Subsystem:      metricsSubsystem,
		Name:           "api_attempts_total",
		Help:           "EC2 API HTTP attempts by operation and result code, retries included.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"operation", "code"})
	apiDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace:      metricsNamespace,
		Subsystem:      metricsSubsystem,
		Name:           "api_request_duration_seconds",
		Help:           "Latency of EC2 API calls by operation, retries and backoff included.",
		Buckets:        []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		StabilityLevel: metrics.ALPHA,
	}, []string{"operation"})
	apiThrottled = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      metricsNamespace,
		Subsystem:      metricsSubsystem,
		Name:           "api_throttled_requests_total",
		Help:           "EC2 API attempts answered with a throttling error, by operation.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"operation"})
	rateLimitWait = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace:      metricsNamespace,
		Subsystem:      metricsSubsystem,
		Name:           "api_rate_limit_wait_seconds",
		Help:           "Time EC2 calls waited for the client-side token bucket, by bucket (describe or mutating).",
		Buckets:        []float64{0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30},
		StabilityLevel: metrics.ALPHA,
	}, []string{"bucket"})
	instanceBatchSize = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace:      metricsNamespace,
		Subsystem:      metricsSubsystem,
		Name:           "instance_batch_size",
		Help:           "Number of distinct lookups answered by one batched DescribeInstances round.",
		Buckets:        []float64{1, 2, 5, 10, 25, 50, 100, 200, 500, 1000},
		StabilityLevel: metrics.ALPHA,
	})
	instanceCacheHits = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      metricsNamespace,
		Subsystem:      metricsSubsystem,
		Name:           "instance_cache_lookups_total",
		Help:           "Distinct instance lookups by result: hit (served from the short-lived cache) or miss (described).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	instanceCacheEntries = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace:      metricsNamespace,
		Subsystem:      metricsSubsystem,
		Name:           "instance_cache_entries",
		Help:           "Instances held in the instance cache, expired ones included until the next sweep (at most half the cache TTL later).",
		StabilityLevel: metrics.ALPHA,
	})
	instanceCacheIndexEntries = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      metricsNamespace,
		Subsystem:      metricsSubsystem,
		Name:           "instance_cache_index_entries",
		Help:           "Entries of the instance cache's indexes: private_dns_name and eni (both bounded by the cached instances), and forget_fence (instances forgotten while describes are in flight).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"index"})
	instanceExpectations = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace:      metricsNamespace,
		Subsystem:      metricsSubsystem,
		Name:           "instance_expectations",
		Help:           "Announced instance lookups (one per key, i.e. per node the node controller has queued) that ride along in other describes.",
		StabilityLevel: metrics.ALPHA,
	})
	instanceLookupsPending = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace:      metricsNamespace,
		Subsystem:      metricsSubsystem,
		Name:           "instance_lookups_pending",
		Help:           "Distinct instance lookups waiting for the next batched describe.",
		StabilityLevel: metrics.ALPHA,
	})

	registerOnce sync.Once
)

// RegisterMetrics registers the EC2 metrics with the legacy registry. It is
// safe to call more than once; New calls it.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(apiRequests, apiAttempts, apiDuration, apiThrottled,
			rateLimitWait, instanceBatchSize, instanceCacheHits,
			instanceCacheEntries, instanceCacheIndexEntries, instanceExpectations, instanceLookupsPending, assignCreditENIs)
	})
}

// metricsMiddleware records calls (Initialize step, once per operation) and
// attempts (Finalize step after the retryer, once per HTTP attempt).
func addMetricsMiddleware(stack *middleware.Stack) error {
	call := middleware.InitializeMiddlewareFunc("CCMCallMetrics", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		start := time.Now()
		out, md, err := next.HandleInitialize(ctx, in)
		op := awsmiddleware.GetOperationName(ctx)
		apiRequests.WithLabelValues(op, codeLabel(err)).Inc()
		apiDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		return out, md, err
	})
	if err := stack.Initialize.Add(call, middleware.Before); err != nil {
		return err
	}
	attempt := middleware.FinalizeMiddlewareFunc("CCMAttemptMetrics", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleFinalize(ctx, in)
		op := awsmiddleware.GetOperationName(ctx)
		apiAttempts.WithLabelValues(op, codeLabel(err)).Inc()
		if IsThrottle(err) {
			apiThrottled.WithLabelValues(op).Inc()
		}
		return out, md, err
	})
	return stack.Finalize.Insert(attempt, "Retry", middleware.After)
}
