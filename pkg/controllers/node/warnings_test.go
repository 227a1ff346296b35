package node

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/testutil"
)

// warningTally counts, across every test of the package, the Warning
// events the controllers emit, by reason. TestMain checks it against
// cloudprovider_aws_node_sync_errors_total after the run: the docs promise
// that every Warning counts there.
var warningTally = struct {
	sync.Mutex
	byReason map[string]int
}{byReason: map[string]int{}}

// tallyingRecorder passes events on and tallies the Warnings.
type tallyingRecorder struct{ record.EventRecorder }

func (r tallyingRecorder) tally(eventType, reason string) {
	if eventType == v1.EventTypeWarning {
		warningTally.Lock()
		warningTally.byReason[reason]++
		warningTally.Unlock()
	}
}

func (r tallyingRecorder) Event(o runtime.Object, eventType, reason, message string) {
	r.tally(eventType, reason)
	r.EventRecorder.Event(o, eventType, reason, message)
}

func (r tallyingRecorder) Eventf(o runtime.Object, eventType, reason, format string, args ...any) {
	r.tally(eventType, reason)
	r.EventRecorder.Eventf(o, eventType, reason, format, args...)
}

func (r tallyingRecorder) AnnotatedEventf(o runtime.Object, ann map[string]string, eventType, reason, format string, args ...any) {
	r.tally(eventType, reason)
	r.EventRecorder.AnnotatedEventf(o, ann, eventType, reason, format, args...)
}

// tallyWarnings makes c's recorder tally its Warnings.
func tallyWarnings(c *Controller) { c.recorder = tallyingRecorder{c.recorder} }

// documentedWarnings are the Warning reasons docs/reference/events.md lists.
func documentedWarnings() ([]string, error) {
	b, err := os.ReadFile("../../../docs/reference/events.md")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| Warning \\| `([A-Za-z0-9]+)`").FindAllSubmatch(b, -1) {
		out = append(out, string(m[1]))
	}
	return out, nil
}

// checkWarningTally compares the tally with the counter, reason by reason,
// and the reasons with the documented ones; with whole, a run of every
// test, each documented reason must also have been emitted by one. It
// returns the problems found.
func checkWarningTally(whole bool) []string {
	warningTally.Lock()
	defer warningTally.Unlock()
	documented, err := documentedWarnings()
	if err != nil {
		return []string{err.Error()}
	}
	reasons := slices.Clone(documented)
	for r := range warningTally.byReason {
		if !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	sort.Strings(reasons)
	var problems []string
	for _, r := range reasons {
		n := warningTally.byReason[r]
		counted, err := testutil.GetCounterMetricValue(syncErrors.WithLabelValues(r))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: read counter: %v", r, err))
			continue
		}
		if int(counted) != n {
			problems = append(problems, fmt.Sprintf("%s: %d Warning events, sync_errors_total{reason=%q} = %v", r, n, r, counted))
		}
		if whole && n == 0 {
			problems = append(problems, fmt.Sprintf("%s: documented Warning that no test of this package emits", r))
		}
		if !slices.Contains(documented, r) {
			problems = append(problems, fmt.Sprintf("%s: Warning reason not listed in docs/reference/events.md", r))
		}
	}
	return problems
}
