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

// RunHostLocal runs the host-local plugin binary at bin with CNI_COMMAND=ADD
// and a CNI 1.0.0 network config whose ipam section allocates from h.Subnet
// into dataDir, and returns the allocated address.
func RunHostLocal(ctx context.Context, bin, dataDir string, h HostLocal) (netip.Addr, error) {
	subnet, err := netip.ParsePrefix(h.Subnet)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("host-local: subnet %q: %w", h.Subnet, err)
	}
	if h.Network == "" || h.ContainerID == "" {
		return netip.Addr{}, fmt.Errorf("host-local: Network and ContainerID are required")
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return netip.Addr{}, err
	}
	conf, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0",
		"name":       h.Network,
		"type":       "host-local",
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": subnet.String()}}},
			"dataDir": dataDir,
		},
	})
	if err != nil {
		return netip.Addr{}, err
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
		return netip.Addr{}, fmt.Errorf("host-local ADD %s in %s: %w: %s %s", h.ContainerID, subnet,
			err, strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()))
	}
	var res cniResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return netip.Addr{}, fmt.Errorf("host-local result %q: %w", stdout.String(), err)
	}
	if len(res.IPs) != 1 {
		return netip.Addr{}, fmt.Errorf("host-local returned %d addresses, want 1: %s", len(res.IPs), stdout.String())
	}
	p, err := netip.ParsePrefix(res.IPs[0].Address)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("host-local address %q: %w", res.IPs[0].Address, err)
	}
	return p.Addr(), nil
}
