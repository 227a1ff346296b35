package tagging

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var metav1PatchOptions = metav1.PatchOptions{}

var workItems = metrics.NewCounterVec(&metrics.CounterOpts{
	Namespace:      "cloudprovider",
	Subsystem:      "aws_tagging",
	Name:           "work_items_total",
	Help:           "Tagging controller work items by action (tag or untag) and result (ok, retry, skipped for an instance EC2 does not know, failed after retries).",
	StabilityLevel: metrics.ALPHA,
}, []string{"action", "result"})

var registerOnce sync.Once

// RegisterMetrics registers the controller's metrics with the legacy registry.
func RegisterMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(workItems) })
}
