package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// HostLocal describes one CNI ADD of the reference host-local IPAM plugin.
type HostLocal struct {
	// Network is the CNI network name; host-local keeps one store per name.
	Network string
	// Subnet is the range to allocate from, e.g. a Node's podCIDR.
	Subnet string
	// Subnets, when set instead of Subnet, are ranges of which host-local
	// gives one address each, e.g. a dual-stack Node's podCIDRs.
	Subnets []string
	// ContainerID identifies the allocation (CNI_CONTAINERID).
	ContainerID string
	// DataDir is host-local's store; a directory under the world's when empty.
	DataDir string
}

// cniResult is the part of a CNI 1.0.0 result host-local fills in.
type cniResult struct {
	CNIVersion string `json:"cniVersion"`
	IPs        []struct {
		Address string `json:"address"`
		Gateway string `json:"gateway"`
	} `json:"ips"`
}

// AllocatePodIP runs _output/bin/host-local with CNI_COMMAND=ADD, as a
// container runtime does for a pod sandbox, and returns the address it
// allocated from h.Subnet. The plugin does not enter the network namespace,
// so CNI_NETNS is a path that need not exist.
func (w *World) AllocatePodIP(ctx context.Context, h HostLocal) (netip.Addr, error) {
	dataDir := h.DataDir
	if dataDir == "" {
		dataDir = filepath.Join(w.Dir, "cni")
	}
	return RunHostLocal(ctx, filepath.Join(w.Bin, "host-local"), dataDir, h)
}

// AllocatePodIPs is AllocatePodIP for h.Subnets: one address per range,
// in their order, as a dual-stack pod gets them.
func (w *World) AllocatePodIPs(ctx context.Context, h HostLocal) ([]netip.Addr, error) {
	dataDir := h.DataDir
	if dataDir == "" {
		dataDir = filepath.Join(w.Dir, "cni")
	}
	return RunHostLocalAll(ctx, filepath.Join(w.Bin, "host-local"), dataDir, h)
}

// RunHostLocal runs the host-local plugin binary at bin with CNI_COMMAND=ADD
// and a CNI 1.0.0 network config whose ipam section allocates from h.Subnet
// into dataDir, and returns the allocated address.
func RunHostLocal(ctx context.Context, bin, dataDir string, h HostLocal) (netip.Addr, error) {
	h.Subnets = []string{h.Subnet}
	addrs, err := RunHostLocalAll(ctx, bin, dataDir, h)
	if err != nil {
		return netip.Addr{}, err
	}
	return addrs[0], nil
}

// RunHostLocalAll runs host-local with one range per entry of h.Subnets
// and returns the address it gave from each, in order.
func RunHostLocalAll(ctx context.Context, bin, dataDir string, h HostLocal) ([]netip.Addr, error) {
	var ranges [][]map[string]string
	for _, s := range h.Subnets {
		subnet, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("host-local: subnet %q: %w", s, err)
		}
		ranges = append(ranges, []map[string]string{{"subnet": subnet.String()}})
	}
	if len(ranges) == 0 || h.Network == "" || h.ContainerID == "" {
		return nil, fmt.Errorf("host-local: Subnets, Network and ContainerID are required")
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	conf, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0",
		"name":       h.Network,
		"type":       "host-local",
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  ranges,
			"dataDir": dataDir,
		},
	})
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Stdin = bytes.NewReader(conf)
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND=ADD",
		"CNI_CONTAINERID="+h.ContainerID,
		"CNI_NETNS=/var/run/netns/"+h.ContainerID,
		"CNI_IFNAME=eth0",
		"CNI_PATH="+filepath.Dir(bin),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// CNI plugins report errors as JSON on stdout.
		return nil, fmt.Errorf("host-local ADD %s in %v: %w: %s %s", h.ContainerID, h.Subnets,
			err, strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()))
	}
	var res cniResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("host-local result %q: %w", stdout.String(), err)
	}
	if len(res.IPs) != len(ranges) {
		return nil, fmt.Errorf("host-local returned %d addresses, want %d: %s", len(res.IPs), len(ranges), stdout.String())
	}
	var out []netip.Addr
	for _, ip := range res.IPs {
		p, err := netip.ParsePrefix(ip.Address)
		if err != nil {
			return nil, fmt.Errorf("host-local address %q: %w", ip.Address, err)
		}
		out = append(out, p.Addr())
	}
	return out, nil
}
