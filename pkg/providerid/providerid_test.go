package providerid

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		want     ID
		wantErr  string
		wantForg bool
	}{
		{in: "aws:///us-east-1a/i-0123456789abcdef0", want: ID{Zone: "us-east-1a", InstanceID: "i-0123456789abcdef0"}},
		{in: "aws:////i-0123456789abcdef0", want: ID{InstanceID: "i-0123456789abcdef0"}},
		{in: "aws://us-west-2b/i-12345678", want: ID{Zone: "us-west-2b", InstanceID: "i-12345678"}},
		{in: "i-0123456789abcdef0", want: ID{InstanceID: "i-0123456789abcdef0"}},
		{in: "i-12345678", want: ID{InstanceID: "i-12345678"}},
		{in: "", wantErr: "empty"},
		{in: "gce://project/zone/name", wantErr: "another cloud provider", wantForg: true},
		{in: "aws:///us-east-1a/fargate-10.0.0.1", wantErr: "invalid instance ID"},
		{in: "aws:///us-east-1a/i-0123456789ABCDEF0", wantErr: "invalid instance ID"},
		{in: "aws:///us-east-1a/i-123", wantErr: "invalid instance ID"},
		{in: "aws:///a/b/i-12345678", wantErr: "want aws:///"},
		{in: "aws://", wantErr: "missing instance ID"},
		{in: "aws:///US_EAST/i-12345678", wantErr: "invalid zone"},
		{in: "node-1", wantErr: "not an EC2 instance ID"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			if errors.Is(err, ErrForeign) != tt.wantForg {
				t.Errorf("Parse(%q): errors.Is(ErrForeign) = %v, want %v", tt.in, !tt.wantForg, tt.wantForg)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	s := Format("eu-west-1c", "i-0abcdef0123456789")
	if s != "aws:///eu-west-1c/i-0abcdef0123456789" {
		t.Fatalf("Format = %q", s)
	}
	id, err := Parse(s)
	if err != nil || id.String() != s {
		t.Fatalf("Parse(Format) = %+v, %v", id, err)
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// formats back to a providerID that parses to the same ID.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"aws:///us-east-1a/i-0123456789abcdef0", "aws:////i-12345678", "i-12345678", "aws://z/i-12345678", "gce://x", "aws:///", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if !ValidInstanceID(id.InstanceID) {
			t.Fatalf("Parse(%q) accepted invalid instance ID %q", s, id.InstanceID)
		}
		again, err := Parse(id.String())
		if err != nil || again != id {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", s, again, err, id)
		}
	})
}
