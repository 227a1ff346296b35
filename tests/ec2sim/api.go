package ec2sim

import (
	"fmt"
	"maps"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// AWSConfig returns an SDK config for tests: static credentials, the
// scenario's region, and BaseEndpoint set to Endpoint().
func (s *Sim) AWSConfig() aws.Config {
	return aws.Config{
		Region:       s.w.region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(s.endpoint),
	}
}

// Env returns environment variables that point an SDK-based process (such
// as the CCM binary) at the emulator for EC2 and IMDS. The region is left
// to IMDS discovery; use Region() to pass it explicitly.
func (s *Sim) Env() []string {
	return append(s.EnvWithoutKeys(),
		"AWS_ACCESS_KEY_ID="+AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+SecretAccessKey,
	)
}

// EnvWithoutKeys is Env without the static keys, for a process that should
// get the instance-role credentials (Scenario.InstanceRole) from IMDS
// through the SDK's default credential chain. AWS_EC2_METADATA_SERVICE_ENDPOINT
// is IMDSEndpoint().
func (s *Sim) EnvWithoutKeys() []string {
	return []string{
		"AWS_ENDPOINT_URL_EC2=" + s.endpoint,
		"AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2=" + s.endpoint,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + s.IMDSEndpoint(),
	}
}

// Calls returns how many calls of action arrived, whatever their outcome.
func (s *Sim) Calls(action string) int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	n := 0
	for _, c := range s.counts[action] {
		n += c
	}
	return n
}

// Counts returns action -> outcome ("success", "throttled" or an error
// code) -> number of calls.
func (s *Sim) Counts() map[string]map[string]int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	out := make(map[string]map[string]int, len(s.counts))
	for a, m := range s.counts {
		out[a] = maps.Clone(m)
	}
	return out
}

// MutatingCalls returns the number of calls, any outcome, of actions that
// change state (Assign/UnassignIpv6Addresses, CreateTags, DeleteTags, …,
// and the ELBv2 Create*, Delete*, Modify*, Set*, Add/RemoveTags and
// Register/DeregisterTargets).
func (s *Sim) MutatingCalls() int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	n := 0
	for a, m := range s.counts {
		if actions[a].mutating || elbv2Mutating(a) {
			for _, c := range m {
				n += c
			}
		}
	}
	return n
}

// ResetCounts zeroes every counter.
func (s *Sim) ResetCounts() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	clear(s.counts)
}

// Fault injects failures into one action.
type Fault struct {
	// ErrorRate in [0,1] is the share of calls failing with Code.
	ErrorRate float64 `json:"errorRate,omitempty"`
	// Code defaults to InternalError; Status defaults to AWS's status for it.
	Code   string `json:"code,omitempty"`
	Status int    `json:"status,omitempty"`
	// Latency is added before the call is answered.
	Latency time.Duration `json:"latency,omitempty"`
	// ConsistencyLag makes describes show state as it was this long ago:
	// new instances and address changes appear only after the lag.
	ConsistencyLag time.Duration `json:"consistencyLag,omitempty"`
	// LostReplyRate in [0,1] is the share of calls that take effect and then
	// answer 500 InternalError, as when EC2 carried a call out but its reply
	// was lost: the caller cannot tell from the error whether it did.
	LostReplyRate float64 `json:"lostReplyRate,omitempty"`
	// ReplyLatency delays the answer of a call that has already taken
	// effect: a client that dies meanwhile never learns the outcome.
	ReplyLatency time.Duration `json:"replyLatency,omitempty"`
}

// SetFault sets the fault of action; "" or "*" applies to every action
// without its own fault.
func (s *Sim) SetFault(action string, f Fault) {
	if action == "" {
		action = "*"
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.faults[action] = f
}

// ClearFaults removes every fault.
func (s *Sim) ClearFaults() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	clear(s.faults)
}

func (s *Sim) fault(action string) Fault {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if f, ok := s.faults[action]; ok {
		return f
	}
	return s.faults["*"]
}

// AddInstance adds a running (or in.State) instance at run time and returns
// its ID.
func (s *Sim) AddInstance(in Instance) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, err := s.w.addInstance(in, time.Now())
	if err != nil {
		return "", fmt.Errorf("add instance: %w", err)
	}
	return inst.id, nil
}

// SetInstanceState moves an instance to state. Terminating releases its
// ENIs and addresses; a terminated instance cannot change state again.
func (s *Sim) SetInstanceState(id, state string) error {
	if _, ok := stateCodes[state]; !ok {
		return fmt.Errorf("set state of %s: unknown state %q", id, state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.w.instByID[id]
	switch {
	case inst == nil:
		return fmt.Errorf("set state of %s: no such instance", id)
	case inst.state() == "terminated":
		return fmt.Errorf("set state of %s: instance is terminated", id)
	case state == "terminated":
		s.w.terminate(inst, time.Now())
	default:
		s.w.setState(inst, state, time.Now())
	}
	return nil
}

// ScheduleTermination terminates instance id after the given delay.
func (s *Sim) ScheduleTermination(id string, after time.Duration) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.timers = append(s.timers, time.AfterFunc(after, func() {
		select {
		case <-s.closed:
		default:
			_ = s.SetInstanceState(id, "terminated")
		}
	}))
}

// SetIMDSInstance chooses the instance IMDS answers for.
func (s *Sim) SetIMDSInstance(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w.imdsInstance = id
}
