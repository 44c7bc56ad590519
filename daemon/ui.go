package daemon

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"lookout/ui"
)

// startUI serves the live dashboard on Options.UIListen, or else on the
// config's ui.listen, until ctx ends; it returns a function that waits for
// it to stop. A dashboard that cannot start is logged and left out: it must
// not stop monitoring.
func (d *Daemon) startUI(ctx context.Context, log *slog.Logger) (wait func()) {
	addr := d.opts.UIListen
	if addr == "" {
		addr = d.cfg.UI.Listen
	}
	if addr == "" || addr == "off" {
		return func() {}
	}
	token := os.Getenv(ui.TokenEnv)
	if w := ui.ListenWarning(addr, token); w != "" {
		log.Warn(w)
	}
	srv, err := ui.New(ctx, ui.Options{Store: d.store, Token: token, Log: log.With("stage", "ui")})
	if err != nil {
		log.Warn("dashboard disabled", "listen", addr, "err", err)
		return func() {}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close()
		log.Warn("dashboard disabled", "listen", addr, "err", err)
		return func() {}
	}
	d.uiAddr.Store(ln.Addr().String())
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if hs.Shutdown(shutdownCtx) != nil {
			hs.Close()
		}
	}()
	log.Info("dashboard", "url", "http://"+ln.Addr().String()+"/")
	return func() {
		<-done
		srv.Close()
	}
}

// UIAddr is the address the dashboard listens on, "" when it does not
// (yet): with port 0 in the config it tells which port was picked.
func (d *Daemon) UIAddr() string {
	a, _ := d.uiAddr.Load().(string)
	return a
}
