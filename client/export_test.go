package client

// StopRetirer stops the timer that retires the current block at its retire
// time, as a process stalled past it would find it: only the hot path's own
// check is left to keep the block from handing out IDs too late.
func (c *Client) StopRetirer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.retirer != nil {
		c.retirer.Stop()
	}
}
