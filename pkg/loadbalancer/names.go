package loadbalancer

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// Name is upstream's load balancer name for a Service: "a" and the UID
// without hyphens, cut to 32 characters.
func Name(svc *v1.Service) string {
	n := "a" + strings.ReplaceAll(string(svc.UID), "-", "")
	if len(n) > 32 {
		n = n[:32]
	}
	return n
}

// TargetGroupName names the target group of one port and family: k8s-,
// eight characters of namespace and of name, and ten of a hash over
// everything that cannot change in place. A change of port, node port,
// protocol, family or health-check protocol makes a new group.
func TargetGroupName(svc *v1.Service, clusterID string, p Port, family string, hc HealthCheck) string {
	h := sha1.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%d\x00%s\x00instance\x00%s\x00%s", clusterID, svc.Namespace, svc.Name, p.Port, p.NodePort, p.Protocol, family, hc.Protocol)
	sum := hex.EncodeToString(h.Sum(nil))
	return fmt.Sprintf("k8s-%.8s-%.8s-%.10s", alnum(svc.Namespace), alnum(svc.Name), sum)
}

func alnum(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}
