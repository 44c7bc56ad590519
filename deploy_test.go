package main

// The packaging in deploy/ checked without Docker or systemd: the files
// agree with each other and with the code (ports, paths, metric names), and
// the image's command, with the image's config, starts a daemon whose
// health check passes. scripts/verify-deploy.sh does the slower checks
// (systemd-analyze, promtool, the release build, docker where an engine runs).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"lookout/config"
	"lookout/daemon"
)

const (
	imageConfig  = "/etc/lookout/config.yaml"
	imageDataDir = "/var/lib/lookout"
)

type instr struct {
	cmd, args string
	stage     int // 0 for the first FROM's stage
}

// dockerfile reads deploy/Dockerfile into instructions, continuation lines
// joined and comments dropped.
func dockerfile(t *testing.T) []instr {
	t.Helper()
	f, err := os.Open("deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instr
	var cur strings.Builder
	stage := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, instr{cmd, strings.Join(strings.Fields(args), " "), stage})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := dockerfile(t)
	last := ins[len(ins)-1].stage
	var froms []string
	var copies []string
	got := map[string]string{} // the runtime stage's instructions
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			froms = append(froms, in.args)
		case in.cmd == "COPY":
			copies = append(copies, in.args)
		}
		if in.stage == last && in.cmd != "COPY" && in.cmd != "RUN" {
			got[in.cmd] = in.args
		}
	}

	// The build stage's Go is go.mod's.
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("no go line in go.mod")
	}
	goArg := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindStringSubmatch(readFile(t, "deploy/Dockerfile"))
	if goArg == nil || goArg[1] != string(m[1]) {
		t.Errorf("Dockerfile ARG GO_VERSION = %v, go.mod says go %s", goArg, m[1])
	}
	if len(froms) != 2 || !strings.HasPrefix(froms[0], "golang:${GO_VERSION}-bookworm") || froms[1] != "debian:bookworm-slim" {
		t.Errorf("stages: %q; want a golang bookworm build stage and a bookworm-slim runtime (same glibc)", froms)
	}

	if u := got["USER"]; u == "" || u == "root" || strings.HasPrefix(u, "0") {
		t.Errorf("USER %q: the runtime stage must not run as root", u)
	}
	if got["VOLUME"] != imageDataDir {
		t.Errorf("VOLUME %q, want %s", got["VOLUME"], imageDataDir)
	}
	if got["EXPOSE"] != "9464" {
		t.Errorf("EXPOSE %q, want 9464", got["EXPOSE"])
	}
	if hc := got["HEALTHCHECK"]; !strings.Contains(hc, "lookout-healthcheck") || !strings.Contains(hc, "/healthz") {
		t.Errorf("HEALTHCHECK %q does not check /healthz", hc)
	}
	// What `docker run IMAGE` runs.
	var entry, cmd []string
	if err := json.Unmarshal([]byte(got["ENTRYPOINT"]), &entry); err != nil {
		t.Fatalf("ENTRYPOINT %q: %v (use the exec form)", got["ENTRYPOINT"], err)
	}
	if err := json.Unmarshal([]byte(got["CMD"]), &cmd); err != nil {
		t.Fatalf("CMD %q: %v", got["CMD"], err)
	}
	if run := append(entry, cmd...); !slices.Equal(run, []string{"lookout", "run", "-c", imageConfig}) {
		t.Errorf("the image runs %q, want lookout run -c %s", run, imageConfig)
	}

	// Files copied from the context exist, and the image's config is ours.
	var confCopied bool
	for _, c := range copies {
		if strings.HasPrefix(c, "--from=") {
			continue
		}
		fields := strings.Fields(c)
		var srcs []string
		for _, f := range fields[:len(fields)-1] {
			if !strings.HasPrefix(f, "--") {
				srcs = append(srcs, f)
			}
		}
		for _, s := range srcs {
			if s == "." {
				continue
			}
			if _, err := os.Stat(s); err != nil {
				t.Errorf("COPY %s: %v", c, err)
			}
			if s == "deploy/config.yaml" && fields[len(fields)-1] == imageConfig {
				confCopied = true
			}
		}
	}
	if !confCopied {
		t.Errorf("the Dockerfile does not COPY deploy/config.yaml to %s", imageConfig)
	}
	if fi, err := os.Stat("deploy/healthcheck.sh"); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("deploy/healthcheck.sh missing or not executable: %v", err)
	}
}

// The image's config must listen beyond the container's loopback, keep the
// database in the volume, and start with no secrets set.
func TestContainerConfig(t *testing.T) {
	cfg, err := config.Load("deploy/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != "0.0.0.0:9464" {
		t.Errorf("http.listen = %q: inside a container it must be 0.0.0.0:9464, or nothing outside reaches /metrics and /healthz", cfg.HTTP.Listen)
	}
	if filepath.Dir(cfg.Store.Path) != imageDataDir {
		t.Errorf("store.path = %q: it must be in the volume %s", cfg.Store.Path, imageDataDir)
	}
	if miss := cfg.MissingSecrets(); len(miss) > 0 {
		t.Errorf("the image's default config needs secrets: %v", miss)
	}
	if err := daemon.Check(cfg); err != nil {
		t.Errorf("does not build: %v", err)
	}
}

// The image's command with the image's config, run in-process with only the
// address and the database moved to a free port and a temp dir: the daemon
// starts, the health-check script the image uses passes, and SIGTERM's path
// (context cancelled) exits cleanly.
func TestContainerCommandPassesHealthcheck(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found: the health-check script needs it")
	}
	text := readFile(t, "deploy/config.yaml")
	addr := freeAddr(t)
	db := filepath.Join(t.TempDir(), "lookout.db")
	for old, repl := range map[string]string{"0.0.0.0:9464": addr, imageDataDir + "/lookout.db": db} {
		if !strings.Contains(text, old) {
			t.Fatalf("deploy/config.yaml no longer contains %q", old)
		}
		text = strings.ReplaceAll(text, old, repl)
	}
	conf := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmdRun(ctx, []string{"-c", conf, "--log-level", "error"}) }()

	check := func(path string) error {
		c := exec.Command("bash", "deploy/healthcheck.sh", path)
		c.Env = append(os.Environ(), "LOOKOUT_HEALTH_ADDR="+addr)
		out, err := c.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := check("/healthz")
		if err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("lookout run exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("health check never passed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := check("/readyz"); err != nil {
		t.Errorf("/readyz: %v", err)
	}
	if err := check("/nonexistent"); err == nil {
		t.Errorf("the health check passed on a 404")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("lookout run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("lookout run did not stop after its context ended")
	}
}

func TestHealthcheckScriptFails(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	for name, addr := range map[string]string{"503": srv.Listener.Addr().String(), "nothing listening": freeAddr(t)} {
		c := exec.Command("bash", "deploy/healthcheck.sh", "/readyz")
		c.Env = append(os.Environ(), "LOOKOUT_HEALTH_ADDR="+addr)
		if out, err := c.CombinedOutput(); err == nil {
			t.Errorf("%s: health check passed: %s", name, out)
		}
	}
}

func TestComposeStack(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Image string
			Build struct {
				Context, Dockerfile string
			}
			Volumes []string
			Ports   []string
		}
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy/compose.yaml")), &compose); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"lookout", "prometheus", "grafana"} {
		if _, ok := compose.Services[s]; !ok {
			t.Errorf("compose.yaml has no %s service", s)
		}
	}
	lk := compose.Services["lookout"]
	if df := filepath.Join("deploy", lk.Build.Context, lk.Build.Dockerfile); lk.Build.Context != ".." || df != "deploy/Dockerfile" {
		t.Errorf("lookout builds %s from context %q; want deploy/Dockerfile from the repository root", df, lk.Build.Context)
	}
	mounts := map[string]string{} // container path -> host path
	for name, s := range compose.Services {
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("%s: volume %q", name, v)
				continue
			}
			mounts[parts[1]] = parts[0]
			if strings.HasPrefix(parts[0], ".") {
				if _, err := os.Stat(filepath.Join("deploy", parts[0])); err != nil {
					t.Errorf("%s mounts %s: %v", name, parts[0], err)
				}
			}
		}
	}
	if mounts[imageConfig] != "./config.yaml" {
		t.Errorf("lookout's config mount: %q", mounts[imageConfig])
	}
	if mounts[imageDataDir] == "" || strings.HasPrefix(mounts[imageDataDir], ".") {
		t.Errorf("the database dir %s is not on a named volume: %q", imageDataDir, mounts[imageDataDir])
	}
	if !slices.ContainsFunc(lk.Ports, func(p string) bool { return strings.HasSuffix(p, ":9464") }) {
		t.Errorf("lookout does not publish 9464: %q", lk.Ports)
	}

	// Prometheus scrapes the lookout service on the port the image's config listens on.
	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy/prometheus.yml")), &prom); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	if !slices.Contains(targets, "lookout:9464") {
		t.Errorf("prometheus.yml targets %q, want lookout:9464", targets)
	}

	// Grafana: the datasource the dashboard names is the provisioned one,
	// and the provider reads the directory compose mounts the dashboards in.
	var ds struct {
		Datasources []struct{ UID, Type, URL string } `yaml:"datasources"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy/grafana/provisioning/datasources/prometheus.yaml")), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].UID != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("datasource: %+v", ds.Datasources)
	}
	var prov struct {
		Providers []struct {
			Options struct{ Path string }
		}
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy/grafana/provisioning/dashboards/lookout.yaml")), &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Providers) != 1 || mounts[prov.Providers[0].Options.Path] != "./grafana/dashboards" {
		t.Errorf("dashboard provider reads %+v; compose mounts ./grafana/dashboards elsewhere", prov.Providers)
	}
}

// Every lookout_ metric the dashboard queries is one the code registers,
// so a renamed metric cannot leave an empty panel behind.
func TestGrafanaDashboardMetrics(t *testing.T) {
	var dash struct {
		UID    string
		Panels []struct {
			Type       string
			Title      string
			Datasource struct{ UID string }
			Targets    []struct{ Expr string }
		}
	}
	if err := json.Unmarshal([]byte(readFile(t, "deploy/grafana/dashboards/lookout.json")), &dash); err != nil {
		t.Fatal(err)
	}
	registered := registeredMetrics(t)
	metricRE := regexp.MustCompile(`\blookout_[a-z0-9_]+`)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "prometheus" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %q, %d queries", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, tg := range p.Targets {
			for _, name := range metricRE.FindAllString(tg.Expr, -1) {
				base := name
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(name, suf); ok && registered[b] {
						base = b
					}
				}
				if !registered[base] {
					t.Errorf("panel %q queries %s, which no code registers", p.Title, name)
				}
				used[base] = true
			}
		}
	}
	for _, want := range []string{
		"lookout_collector_items_total", // items/s by source
		"lookout_source_up",
		"lookout_alert_events_total", // alerts firing
		"lookout_outbox_pending",     // outbox backlog
		"lookout_store_batch_seconds",
		"lookout_store_backlog_items",
	} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}

// registeredMetrics collects the "lookout_…" metric names in the module's
// non-test Go files.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`Name:\s*"(lookout_[a-z0-9_]+)"`)
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		for _, m := range re.FindAllStringSubmatch(readFile(t, path), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 20 {
		t.Fatalf("found only %d registered lookout_ metrics: has the registration style changed?", len(names))
	}
	return names
}

// unit parses a systemd unit: section.key -> values, in order.
func unit(t *testing.T, path string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	for _, line := range strings.Split(readFile(t, path), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("%s: not key=value: %q", path, line)
				continue
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	u := unit(t, "deploy/lookout.service")
	one := func(k string) string {
		if v := u[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	for k, want := range map[string]string{
		"Service.DynamicUser":     "yes",
		"Service.StateDirectory":  "lookout",
		"Service.ProtectSystem":   "strict",
		"Service.ProtectHome":     "yes",
		"Service.PrivateTmp":      "yes",
		"Service.NoNewPrivileges": "yes",
		"Service.Restart":         "on-failure",
		"Install.WantedBy":        "multi-user.target",
	} {
		if got := one(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	fams := strings.Fields(one("Service.RestrictAddressFamilies"))
	for _, f := range []string{"AF_INET", "AF_INET6", "AF_UNIX"} {
		if !slices.Contains(fams, f) {
			t.Errorf("RestrictAddressFamilies=%q lacks %s (lookout needs it)", fams, f)
		}
	}
	if er := one("Service.ExecReload"); er != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload=%q, want SIGHUP to the main process (lookout reloads its config on it)", er)
	}
	if ef := one("Service.EnvironmentFile"); !strings.HasSuffix(ef, "/etc/lookout/lookout.env") {
		t.Errorf("EnvironmentFile=%q", ef)
	}
	exe := strings.Fields(one("Service.ExecStart"))
	if len(exe) < 4 || !slices.Equal(exe[1:4], []string{"run", "-c", imageConfig}) {
		t.Errorf("ExecStart=%q, want lookout run -c %s", exe, imageConfig)
	}
	// ProtectSystem=strict leaves only the state directory writable: a
	// relative store.path must resolve there.
	if wd := one("Service.WorkingDirectory"); wd != "/var/lib/lookout" {
		t.Errorf("WorkingDirectory=%q, want the state directory /var/lib/lookout", wd)
	}

	// systemd's own check, where systemd is installed. It insists that
	// ExecStart's binary exists, so a copy runs this test binary instead.
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not found: directives checked, `systemd-analyze verify` not run (scripts/verify-deploy.sh installs systemd and runs it)")
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(readFile(t, "deploy/lookout.service"), "ExecStart="+exe[0], "ExecStart="+self, 1)
	copyPath := filepath.Join(t.TempDir(), "lookout.service")
	if err := os.WriteFile(copyPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sa, "verify", copyPath).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// freeAddr is a loopback address nothing listens on (just now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
