package node

// forgetNode removes everything this process remembers about a deleted node.
func (c *Controller) forgetNode(name string) {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	delete(c.memo, name)
	delete(c.done, name)
	delete(c.gone, name)
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
	defer c.memoMu.Unlock()
	return map[string]int{"memo": len(c.memo), "done": len(c.done), "gone": len(c.gone)}
}

// recordSizesLocked exports the map sizes; memoMu must be held.
func (c *Controller) recordSizesLocked() {
	stateEntries.WithLabelValues("memo").Set(float64(len(c.memo)))
	stateEntries.WithLabelValues("done").Set(float64(len(c.done)))
	stateEntries.WithLabelValues("gone").Set(float64(len(c.gone)))
}
