package server

import "github.com/shardseq/shardseq/failover"

// startRepairs starts the repairs of the server's cluster connection: the
// server owns its use of it (its clients share it and start none), so it
// runs them until Close.
func (s *Server) startRepairs() {
	s.repairs = failover.StartRepairs(s.cfg.Cluster, failover.RepairConfig{Options: s.cfg.Client.ShardOptions(), Logger: s.log})
}

// stopRepairs stops them and logs what they did.
func (s *Server) stopRepairs() {
	s.repairs.Stop()
	if sweeps, last := s.repairs.Report(); sweeps > 0 {
		s.log.Info("repairs stopped", "sweeps", sweeps, "last_masters", last.Masters, "last_at", last.At)
	}
}
