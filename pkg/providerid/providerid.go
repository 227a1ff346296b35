// Package providerid parses and formats the AWS providerID of a Node.
//
// Accepted forms, as kubernetes/cloud-provider-aws accepts them:
//
//	aws:///<zone>/<instance-id>
//	aws:////<instance-id>
//	aws://<zone>/<instance-id>
//	<instance-id>
//
// where <instance-id> is i- followed by 8 or 17 lowercase hex digits.
package providerid

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme is the providerID scheme of AWS nodes.
const Scheme = "aws"

// ErrForeign reports a providerID of another cloud provider.
var ErrForeign = errors.New("providerID belongs to another cloud provider")

// ID is a parsed providerID.
type ID struct {
	// Zone is the availability zone, empty when the providerID has none.
	Zone string
	// InstanceID is the EC2 instance ID.
	InstanceID string
}

// String formats the ID as aws:///<zone>/<instance-id>.
func (id ID) String() string { return Format(id.Zone, id.InstanceID) }

// Format returns the canonical providerID of an instance.
func Format(zone, instanceID string) string {
	return Scheme + ":///" + zone + "/" + instanceID
}

// Parse parses a providerID in any accepted form.
func Parse(s string) (ID, error) {
	if s == "" {
		return ID{}, errors.New("providerID is empty")
	}
	rest, hasScheme := strings.CutPrefix(s, Scheme+"://")
	if !hasScheme {
		if i := strings.Index(s, "://"); i >= 0 {
			return ID{}, fmt.Errorf("providerID %q: scheme %q: %w", s, s[:i], ErrForeign)
		}
		if !ValidInstanceID(s) {
			return ID{}, fmt.Errorf("providerID %q: not an EC2 instance ID (want i- and 8 or 17 hex digits) nor aws:///<zone>/<instance-id>", s)
		}
		return ID{InstanceID: s}, nil
	}
	// rest is "<host>/<path>": host is empty or a zone; the path is "/<zone>/<id>", "//<id>" or "/<id>".
	host, path, ok := strings.Cut(rest, "/")
	if !ok {
		return ID{}, fmt.Errorf("providerID %q: missing instance ID", s)
	}
	parts := strings.Split(path, "/")
	var zone, inst string
	switch {
	case host != "" && len(parts) == 1:
		zone, inst = host, parts[0]
	case host == "" && len(parts) == 2:
		zone, inst = parts[0], parts[1]
	default:
		return ID{}, fmt.Errorf("providerID %q: want aws:///<zone>/<instance-id>", s)
	}
	if !validZone(zone) {
		return ID{}, fmt.Errorf("providerID %q: invalid zone %q", s, zone)
	}
	if !ValidInstanceID(inst) {
		return ID{}, fmt.Errorf("providerID %q: invalid instance ID %q (want i- and 8 or 17 hex digits)", s, inst)
	}
	return ID{Zone: zone, InstanceID: inst}, nil
}

// ValidInstanceID reports whether s has the form of an EC2 instance ID.
func ValidInstanceID(s string) bool {
	hex, ok := strings.CutPrefix(s, "i-")
	if !ok || (len(hex) != 8 && len(hex) != 17) {
		return false
	}
	for _, c := range hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validZone accepts an empty zone or a zone name of lowercase letters, digits and dashes.
func validZone(z string) bool {
	for _, c := range z {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
