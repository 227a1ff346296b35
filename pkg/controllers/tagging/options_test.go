package tagging

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestChecksumIsUpstreams: the label value is MD5 of the sorted key=value
// pairs joined by commas (upstream's getChecksumOfTags), computed by hand.
func TestChecksumIsUpstreams(t *testing.T) {
	got := Checksum(map[string]string{"team": "ipv6", "cost-center": "k8s"})
	if want := "b28034bfe2881963aac1b43201b23fb8"; got != want {
		t.Errorf("checksum %s, want %s", got, want)
	}
}

// TestOptions: upstream's flag names parse; Validate reports every problem.
func TestOptions(t *testing.T) {
	o := NewOptions()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--tags=a=1,b=2", "--resources=instance", "--tagging-controller-rate-limit=5",
		"--tagging-controller-burst-limit=10", "--tagging-controller-concurrent-node-syncs=2", "--tagging-controller-enable-batching=false"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil || len(o.Tags) != 2 || o.Batching || o.Workers != 2 {
		t.Errorf("options %+v, err %v", o, err)
	}
	bad := &Options{Resources: []string{"volume"}, RateLimit: -1, Workers: 0, Batching: true}
	err := bad.Validate()
	for _, want := range []string{"--tags", "volume", "rate-limit", "concurrent-node-syncs", "batch-window"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %s", err, want)
		}
	}
}
