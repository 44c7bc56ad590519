package loadgen

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lookout/config"
	pgstore "lookout/store/pg"
	"lookout/transport"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx": the reader of a PostgreSQL store
)

// processors are the process-role daemons of a nats run.
type processors struct {
	cmds []*exec.Cmd
	done []chan error
	// cpu is the user+system CPU time of the processors stop waited for.
	cpu time.Duration
}

// startProcessors writes one config per processor (its own SQLite file)
// and runs `Exe run --role process` for each, then waits until the
// partitions are shared among them all.
func startProcessors(ctx context.Context, o Options, cfg *config.Config, dbPaths []string, cfgFor func(string) string) (*processors, error) {
	ps := &processors{}
	for i, db := range dbPaths {
		path := filepath.Join(filepath.Dir(db), fmt.Sprintf("proc-%d.yaml", i))
		if err := os.WriteFile(path, []byte(cfgFor(db)), 0o600); err != nil {
			ps.kill()
			return nil, fmt.Errorf("loadgen: %w", err)
		}
		args := []string{"run", "--role", "process", "-c", path, "--id", "p" + strconv.Itoa(i), "--log-level", "error"}
		if o.ProcessorProfile != "" {
			args = append(args, "--cpuprofile", fmt.Sprintf("%s.proc-%d", o.ProcessorProfile, i))
		}
		cmd := exec.Command(o.Exe, args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if o.PostgresDSN != "" {
			cmd.Env = append(os.Environ(), config.DefaultPostgresDSNEnv+"="+o.PostgresDSN)
		}
		if err := cmd.Start(); err != nil {
			ps.kill()
			return nil, fmt.Errorf("loadgen: start processor: %w", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		ps.cmds = append(ps.cmds, cmd)
		ps.done = append(ps.done, done)
	}
	conn, err := transport.Connect(ctx, cfg.Transport.NATS, "loadgen", nil, nil)
	if err != nil {
		ps.kill()
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := conn.Status(ctx)
		owners := map[string]int{}
		free := 0
		for _, p := range st {
			if p.Owner == "" {
				free++
			}
			owners[p.Owner]++
		}
		if err == nil && free == 0 && len(owners) == len(dbPaths) {
			return ps, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			ps.kill()
			return nil, fmt.Errorf("loadgen: the %d processors did not share the partitions within 30s (owners %v, err %v)", len(dbPaths), owners, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends every processor with SIGTERM (they drain) and waits.
func (ps *processors) stop() error {
	var errs []error
	for i, c := range ps.cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-ps.done[i]:
			if err != nil {
				errs = append(errs, fmt.Errorf("processor %d: %w", i, err))
			}
			if st := c.ProcessState; st != nil {
				ps.cpu += st.UserTime() + st.SystemTime()
			}
		case <-time.After(30 * time.Second):
			_ = c.Process.Kill()
			errs = append(errs, fmt.Errorf("processor %d did not stop within 30s", i))
		}
	}
	ps.cmds = nil
	return errors.Join(errs...)
}

// cpuTime is the user+system CPU time of this process and of its waited-for
// children.
func cpuTime() time.Duration {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

// kill ends whatever is still running (error paths).
func (ps *processors) kill() {
	for i, c := range ps.cmds {
		_ = c.Process.Kill()
		<-ps.done[i]
	}
	ps.cmds = nil
}

// openPostgres opens the shared store's database for the reader and checks
// that it holds no items: item ids repeat from run to run, so rows of an
// earlier run would be taken for duplicates.
func openPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("loadgen: postgres: %w", err)
	}
	var exists bool
	var n int64
	err = db.QueryRowContext(ctx, `SELECT to_regclass('items') IS NOT NULL`).Scan(&exists)
	if err == nil && exists {
		err = db.QueryRowContext(ctx, `SELECT count(*) FROM items`).Scan(&n)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("loadgen: postgres %s: %w", pgstore.Redact(dsn), err)
	}
	if n > 0 {
		db.Close()
		return nil, fmt.Errorf("loadgen: postgres %s holds %d items already; give an empty database (item ids repeat between runs)", pgstore.Redact(dsn), n)
	}
	return db, nil
}

// postgresCPU is the user+system CPU time of every process named postgres
// on this machine (the server and its backends), from /proc; 0 where
// /proc is absent.
func postgresCPU() time.Duration {
	entries, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		lp, rp := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if lp < 0 || rp < lp || string(b[lp+1:rp]) != "postgres" {
			continue
		}
		f := strings.Fields(string(b[rp+1:]))
		if len(f) < 13 { // state is f[0]; utime and stime are fields 14 and 15 of stat
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ, 100 on Linux
}
