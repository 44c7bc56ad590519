package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"lookout/config"
	"lookout/daemon"
)

// Signals the daemon handles (README, "Reload and signals"):
//
//	SIGINT, SIGTERM  flush and exit
//	SIGQUIT          write every goroutine's stack to stderr, then flush
//	                 and exit like SIGTERM (Go's default would exit at once
//	                 and lose what is not yet written)
//	SIGHUP           reload the config file
//	SIGPIPE          ignored: a closed stdout or stderr (a log pipe whose
//	                 reader died) makes writes fail instead of killing the
//	                 daemon
//
// SIGUSR1, SIGUSR2, SIGALRM and the other signals whose default action
// would end a C program are caught by the Go runtime and ignored.

// stopSignals end a command gracefully. `lookout run` takes SIGQUIT out
// of them (runStopSignals) and handles it in runSignals, which writes the
// stacks before it stops the daemon: were SIGQUIT also to cancel the
// command's context, the daemon could stop, and the process exit, before
// the stacks were written.
var (
	stopSignals    = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT}
	runStopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}
)

// notifyRunSignals starts catching the signals runSignals handles.
func notifyRunSignals() chan os.Signal {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGQUIT)
	return ch
}

// runSignals handles the signals of a running daemon until ctx is done:
// SIGHUP reloads the config, SIGQUIT dumps the goroutines and then calls
// stop, which ends the daemon's context.
func runSignals(ctx context.Context, ch <-chan os.Signal, d *daemon.Daemon, log *slog.Logger, stop context.CancelFunc) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-ch:
			switch sig {
			case syscall.SIGHUP:
				log.Info("SIGHUP: reloading the config")
				// Errors are logged and counted by ReloadFile; the
				// running config stays.
				d.ReloadFile(ctx)
			case syscall.SIGQUIT:
				os.Stderr.Write(goroutineStacks())
				log.Info("SIGQUIT: goroutine stacks written to stderr; shutting down")
				stop()
			}
		}
	}
}

// goroutineStacks is every goroutine's stack, as a panic would print them.
func goroutineStacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// cmdReload asks a running daemon to reload its config file, through POST
// /-/reload on its HTTP endpoint (loopback clients only), and prints what
// changed. The daemon reads the file it was started with; -c here only
// says where to find the daemon (http.listen) and is checked first.
func cmdReload(ctx context.Context, args []string) error {
	return reload(ctx, args, os.Stdout)
}

// reload is cmdReload writing to w.
func reload(ctx context.Context, args []string, w io.Writer) error {
	fs := newFlags("reload")
	cfgPath := fs.String("c", "config.yaml", "the daemon's config file (to find its http.listen)")
	fs.StringVar(cfgPath, "config", "config.yaml", "same as -c")
	url := fs.String("url", "", "the daemon's HTTP endpoint (default: http://<http.listen of -c>)")
	format := fs.String("format", "text", "text or json")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for the daemon's answer")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if *format != "text" && *format != "json" {
		return errors.New("--format must be text or json")
	}
	if *url == "" {
		text, err := os.ReadFile(*cfgPath)
		if err != nil {
			return err
		}
		// Secrets need not be set where this runs: only http.listen is
		// read here. The daemon checks the file again with its own
		// environment.
		for _, v := range config.ReferencedEnv(text) {
			if os.Getenv(v) == "" {
				os.Setenv(v, config.CheckPlaceholder)
			}
		}
		cfg, err := config.Parse(text, *cfgPath)
		if err != nil {
			return fmt.Errorf("%w\n(the daemon was not asked to reload)", err)
		}
		if *url, err = reloadURL(cfg.HTTP.Listen); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*url, "/")+"/-/reload", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask the daemon at %s: %w (is it running? without an HTTP endpoint send SIGHUP: kill -HUP <pid>)", *url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	return printReload(w, resp.StatusCode, body, *format)
}

// reloadURL is where the daemon listening on listen takes reloads.
func reloadURL(listen string) (string, error) {
	if listen == "" || listen == "off" {
		return "", errors.New("http.listen is off, so the daemon takes reloads only by signal: kill -HUP <pid> (systemctl reload lookout)")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("http.listen %q: %w", listen, err)
	}
	// Reloads are taken from loopback clients only: a wildcard address is
	// reached on loopback.
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// printReload writes the daemon's answer; a rejected config is an error
// (its message is the daemon's: file, line, field).
func printReload(w io.Writer, code int, body []byte, format string) error {
	var ans struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		daemon.ReloadReport
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("the daemon answered %d: %s", code, bytes.TrimSpace(body))
	}
	if !ans.OK {
		return fmt.Errorf("the daemon rejected the reload (%d); its running config stays:\n%s", code, ans.Error)
	}
	if format == "json" {
		_, err := w.Write(body)
		return err
	}
	r := ans.ReloadReport
	fmt.Fprintf(w, "reloaded %s\n", r.Config)
	line := func(what string, v []string) {
		if len(v) > 0 {
			fmt.Fprintf(w, "  %-18s %s\n", what+":", strings.Join(v, ", "))
		}
	}
	line("sources added", r.SourcesAdded)
	line("sources removed", r.SourcesRemoved)
	line("sources restarted", r.SourcesChanged)
	line("rules added", r.RulesAdded)
	line("rules removed", r.RulesRemoved)
	line("rules changed", r.RulesChanged)
	if r.AlertsResolved > 0 {
		fmt.Fprintf(w, "  %-18s %d (their rule was removed)\n", "alerts resolved:", r.AlertsResolved)
	}
	if r.Delivery {
		fmt.Fprintf(w, "  route and receivers rebuilt\n")
	}
	if r.Classifier {
		fmt.Fprintf(w, "  classifier and keywords rebuilt\n")
	}
	if len(r.NeedsRestart) > 0 {
		fmt.Fprintf(w, "  needs restart (not applied): %s\n", strings.Join(r.NeedsRestart, ", "))
	}
	return nil
}
