package main

import (
	"context"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lookout/internal/loadgen"
)

func TestLoadgenFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		help bool
	}{
		{[]string{"--help"}, true},
		{[]string{"--format", "yaml"}, false},
		{[]string{"--rooms", "0"}, false},
		{[]string{"--watch", "-1"}, false},
		{[]string{"--ui", "--transport", "nats"}, false},
	} {
		err := cmdLoadgen(context.Background(), tc.args)
		if err == nil {
			t.Errorf("%v: no error", tc.args)
			continue
		}
		if got := errors.Is(err, flag.ErrHelp); got != tc.help {
			t.Errorf("%v: err %v, help=%t want %t", tc.args, err, got, tc.help)
		}
	}
}

// TestMain lets the test binary stand in for the lookout binary: with
// LOOKOUT_TEST_RUN_MAIN=1 in its environment it runs main instead of the
// tests, as the processors loadgen starts with --transport nats do.
func TestMain(m *testing.M) {
	if os.Getenv("LOOKOUT_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLoadgenNATSProcessorCPU runs loadgen over an embedded NATS server with
// one processor process (this test binary running `run --role process`):
// nothing is lost, the processor's own CPU is reported as a part of the
// total, and the server's files under --nats-dir are gone afterwards.
func TestLoadgenNATSProcessorCPU(t *testing.T) {
	t.Setenv("LOOKOUT_TEST_RUN_MAIN", "1") // inherited by the processor only
	natsDir := t.TempDir()
	res, err := loadgen.Run(context.Background(), loadgen.Options{Rooms: 2, Rate: 200, Duration: 2 * time.Second,
		DBPath: filepath.Join(t.TempDir(), "lg.db"), Transport: "nats", Processors: 1, Partitions: 2,
		Exe: os.Args[0], NATSDir: natsDir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent < 300 || res.Lost != 0 || res.Stored != res.Sent {
		t.Errorf("sent %d stored %d lost %d, want about 400 sent and nothing lost", res.Sent, res.Stored, res.Lost)
	}
	if res.ProcessorCPUSeconds <= 0 || res.ProcessorCPUSeconds >= res.CPUSeconds {
		t.Errorf("processor CPU %.3fs of %.3fs in all: want a part of the total", res.ProcessorCPUSeconds, res.CPUSeconds)
	}
	if want := res.ProcessorCPUSeconds * 1e6 / float64(res.Stored); math.Abs(res.ProcessorCPUPerMsgUS-want) > 1e-9 {
		t.Errorf("processor CPU per message %v, want %v", res.ProcessorCPUPerMsgUS, want)
	}
	if left, err := os.ReadDir(natsDir); err != nil || len(left) != 0 {
		t.Errorf("--nats-dir holds %d entries after the run (err %v), want none", len(left), err)
	}
}
