// Package embednats runs a NATS server with JetStream inside the process,
// on a random loopback port, for tests and loadgen: no external process.
package embednats

import (
	"errors"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a running embedded NATS server.
type Server struct {
	*server.Server
}

// Start runs a JetStream-enabled server on 127.0.0.1 with a random port,
// keeping its stream files under dir.
func Start(dir string) (*Server, error) {
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded nats server not ready within 10s")
	}
	return &Server{s}, nil
}

// URL is the nats:// address clients dial.
func (s *Server) URL() string { return s.ClientURL() }

// Stop shuts the server down and waits until it is gone.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}
