package tagging

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/pflag"
)

// ResourceInstance is the one resource kind upstream (and we) tag.
const ResourceInstance = "instance"

// Defaults for Options.
const (
	DefaultWorkers     = 1 // upstream's --tagging-controller-concurrent-node-syncs
	DefaultBatchWindow = time.Second
)

// Options are upstream's tagging-controller flags, plus the batching window.
type Options struct {
	// Tags are set on each node's instance (--tags key=value,...).
	Tags map[string]string
	// Resources lists what to tag; only "instance" exists (--resources).
	Resources []string
	// RateLimit and BurstLimit limit how fast the queue hands out items;
	// zero disables the limit.
	RateLimit  float64
	BurstLimit int
	// Workers is the number of workers taking items from the queue.
	Workers int
	// Batching sends the IDs of many nodes in one CreateTags or DeleteTags
	// call (up to 1000) after BatchWindow. On by default here; upstream's
	// default is off.
	Batching    bool
	BatchWindow time.Duration
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{Workers: DefaultWorkers, Batching: true, BatchWindow: DefaultBatchWindow}
}

// AddFlags registers upstream's flag names with upstream's types.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringToStringVar(&o.Tags, "tags", o.Tags, "Tags to set on the AWS resources of each Node (tagging controller), as key=value pairs. Removed again when the Node is deleted.")
	fs.StringArrayVar(&o.Resources, "resources", o.Resources, `AWS resources the tagging controller tags; only "instance" is supported.`)
	fs.Float64Var(&o.RateLimit, "tagging-controller-rate-limit", o.RateLimit, "Steady rate (items per second) at which the tagging controller takes items from its queue. Zero (default) disables the limit.")
	fs.IntVar(&o.BurstLimit, "tagging-controller-burst-limit", o.BurstLimit, "Burst of the tagging controller's queue rate limit. Zero (default) disables the limit.")
	fs.IntVar(&o.Workers, "tagging-controller-concurrent-node-syncs", o.Workers, "Number of tagging controller workers. Workers only hand nodes to the batcher and write labels, so one is usually enough.")
	fs.BoolVar(&o.Batching, "tagging-controller-enable-batching", o.Batching, "Tag (and untag) the instances of many nodes with one CreateTags (DeleteTags) call of up to 1000 IDs, after --tagging-controller-batch-window. On by default here (upstream: off); false makes one call per node.")
	fs.DurationVar(&o.BatchWindow, "tagging-controller-batch-window", o.BatchWindow, "How long the tagging controller collects nodes before one batched call (new here, not upstream).")
}

// Validate reports every problem at once, with upstream's rules.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Tags) == 0 {
		errs = append(errs, errors.New("--tags must not be empty: give key=value pairs"))
	}
	for k, v := range o.Tags {
		if k == "" || len(k) > 128 || len(v) > 256 {
			errs = append(errs, fmt.Errorf("--tags: invalid tag %q=%q (keys 1-128 characters, values up to 256)", k, v))
		}
	}
	if len(o.Resources) == 0 {
		errs = append(errs, errors.New("--resources must not be empty"))
	}
	for _, r := range o.Resources {
		if r != ResourceInstance {
			errs = append(errs, fmt.Errorf("--resources: %q is not supported (supported: %q)", r, ResourceInstance))
		}
	}
	if o.RateLimit < 0 {
		errs = append(errs, errors.New("--tagging-controller-rate-limit must not be negative"))
	}
	if o.BurstLimit < 0 {
		errs = append(errs, errors.New("--tagging-controller-burst-limit must not be negative"))
	}
	if o.Workers <= 0 {
		errs = append(errs, errors.New("--tagging-controller-concurrent-node-syncs must be positive"))
	}
	if o.Batching && o.BatchWindow <= 0 {
		errs = append(errs, errors.New("--tagging-controller-batch-window must be positive"))
	}
	return errors.Join(errs...)
}

func (o *Options) tagsInstances() bool { return slices.Contains(o.Resources, ResourceInstance) }
