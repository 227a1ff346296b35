package ec2sim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// adminFault is the JSON form of a Fault, with durations as Go strings.
type adminFault struct {
	Action         string  `json:"action"`
	ErrorRate      float64 `json:"errorRate,omitempty"`
	Code           string  `json:"code,omitempty"`
	Status         int     `json:"status,omitempty"`
	Latency        string  `json:"latency,omitempty"`
	ConsistencyLag string  `json:"consistencyLag,omitempty"`
	LostReplyRate  float64 `json:"lostReplyRate,omitempty"`
	ReplyLatency   string  `json:"replyLatency,omitempty"`
}

// serveAdmin handles the JSON control endpoint under /_ec2sim/.
func (s *Sim) serveAdmin(rw http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/_ec2sim/")
	route := r.Method + " " + path
	var err error
	var out any = map[string]string{"status": "ok"}
	switch {
	case route == "GET state":
		out = s.State()
	case route == "GET elbv2":
		out = s.ELBv2()
	case route == "GET counts":
		out = s.Counts()
	case route == "POST counts/reset":
		s.ResetCounts()
	case route == "POST faults":
		var f adminFault
		if err = decodeJSON(r, &f); err == nil {
			var ft Fault
			if ft, err = f.fault(); err == nil {
				s.SetFault(f.Action, ft)
			}
		}
	case route == "DELETE faults":
		s.ClearFaults()
	case route == "POST throttling":
		var b struct {
			Enabled bool `json:"enabled"`
		}
		if err = decodeJSON(r, &b); err == nil {
			s.SetThrottling(b.Enabled)
		}
	case route == "POST buckets":
		var b struct {
			Action          string  `json:"action"`
			Capacity        float64 `json:"capacity"`
			RefillPerSecond float64 `json:"refillPerSecond"`
		}
		if err = decodeJSON(r, &b); err == nil {
			s.SetBucket(b.Action, b.Capacity, b.RefillPerSecond)
		}
	case route == "POST instances":
		var in Instance
		if err = decodeJSON(r, &in); err == nil {
			var id string
			if id, err = s.AddInstance(in); err == nil {
				out = map[string]string{"id": id}
			}
		}
	case r.Method == http.MethodPost && strings.HasPrefix(path, "instances/") && strings.HasSuffix(path, "/state"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "instances/"), "/state")
		var b struct {
			State string `json:"state"`
			After string `json:"after,omitempty"`
		}
		if err = decodeJSON(r, &b); err == nil {
			err = s.adminState(id, b.State, b.After)
		}
	case route == "POST imds":
		var b struct {
			Instance string `json:"instance"`
		}
		if err = decodeJSON(r, &b); err == nil {
			s.SetIMDSInstance(b.Instance)
		}
	default:
		writeJSON(rw, http.StatusNotFound, map[string]string{"error": "no such admin route: " + route})
		return
	}
	if err != nil {
		writeJSON(rw, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(rw, http.StatusOK, out)
}

func (s *Sim) adminState(id, state, after string) error {
	if after == "" {
		return s.SetInstanceState(id, state)
	}
	d, err := time.ParseDuration(after)
	if err != nil || state != "terminated" {
		return fmt.Errorf("after needs a duration and state terminated: %q %q", after, state)
	}
	s.ScheduleTermination(id, d)
	return nil
}

func (f adminFault) fault() (Fault, error) {
	ft := Fault{ErrorRate: f.ErrorRate, Code: f.Code, Status: f.Status, LostReplyRate: f.LostReplyRate}
	var err error
	if f.Latency != "" {
		if ft.Latency, err = time.ParseDuration(f.Latency); err != nil {
			return ft, fmt.Errorf("latency: %w", err)
		}
	}
	if f.ReplyLatency != "" {
		if ft.ReplyLatency, err = time.ParseDuration(f.ReplyLatency); err != nil {
			return ft, fmt.Errorf("replyLatency: %w", err)
		}
	}
	if f.ConsistencyLag != "" {
		if ft.ConsistencyLag, err = time.ParseDuration(f.ConsistencyLag); err != nil {
			return ft, fmt.Errorf("consistencyLag: %w", err)
		}
	}
	if ft.ErrorRate < 0 || ft.ErrorRate > 1 {
		return ft, fmt.Errorf("errorRate %v is outside [0,1]", ft.ErrorRate)
	}
	if ft.LostReplyRate < 0 || ft.LostReplyRate > 1 {
		return ft, fmt.Errorf("lostReplyRate %v is outside [0,1]", ft.LostReplyRate)
	}
	return ft, nil
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	return nil
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	enc := json.NewEncoder(rw)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
