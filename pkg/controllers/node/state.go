package node

import (
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/addresses"
)

// forgetNode removes everything this process remembers about a deleted node.
func (c *Controller) forgetNode(name string) {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	delete(c.memo, name)
	delete(c.done, name)
	delete(c.gone, name)
	delete(c.status, name)
	c.recordSizesLocked()
}

// settled drops the expectation of a node the informer shows initialized:
// the write it guarded against is visible now.
func (c *Controller) settled(name string) {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	if _, ok := c.done[name]; ok {
		delete(c.done, name)
		c.recordSizesLocked()
	}
}

// StateSizes returns the number of entries in each per-node map.
func (c *Controller) StateSizes() map[string]int {
	c.memoMu.Lock()
	out := map[string]int{"memo": len(c.memo), "done": len(c.done), "gone": len(c.gone), "status": len(c.status)}
	c.memoMu.Unlock()
	if c.v4 != nil {
		out["ipv4_ranges"], out["ipv4_waiting"] = c.v4.sizes()
	}
	return out
}

// recordV4Sizes exports the IPv4 range maps' sizes.
func (c *Controller) recordV4Sizes() {
	held, waiting := c.v4.sizes()
	stateEntries.WithLabelValues("ipv4_ranges").Set(float64(held))
	stateEntries.WithLabelValues("ipv4_waiting").Set(float64(waiting))
}

// recordSizesLocked exports the map sizes; memoMu must be held.
func (c *Controller) recordSizesLocked() {
	stateEntries.WithLabelValues("memo").Set(float64(len(c.memo)))
	stateEntries.WithLabelValues("done").Set(float64(len(c.done)))
	stateEntries.WithLabelValues("gone").Set(float64(len(c.gone)))
	stateEntries.WithLabelValues("status").Set(float64(len(c.status)))
}

// statusWrite is a status write of this process the informer may not show
// yet.
type statusWrite struct {
	addrs []v1.NodeAddress
	at    time.Time
}

// wroteStatus reports whether this process wrote exactly addrs to the node's
// status within expectationTTL, until the node is initialized.
func (c *Controller) wroteStatus(name string, addrs []v1.NodeAddress) bool {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	w, ok := c.status[name]
	return ok && c.now().Sub(w.at) < expectationTTL && addresses.Equal(w.addrs, addrs)
}

// recordStatus remembers a status write until the node is initialized.
func (c *Controller) recordStatus(name string, addrs []v1.NodeAddress) {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	c.status[name] = statusWrite{addrs: addrs, at: c.now()}
	c.recordSizesLocked()
}
