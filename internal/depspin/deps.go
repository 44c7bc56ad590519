// Package depspin pins the project's dependencies while packages are being
// written in parallel; it is removed once every dependency is imported for
// real.
package depspin

import (
	_ "github.com/PuerkitoBio/goquery"
	_ "github.com/andybalholm/brotli"
	_ "github.com/go-ego/gse"
	_ "github.com/gorilla/websocket"
	_ "github.com/mattn/go-sqlite3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/slack-go/slack"
	_ "github.com/slack-go/slack/slacktest"
	_ "golang.org/x/net/html/charset"
	_ "golang.org/x/text/encoding/simplifiedchinese"
	_ "golang.org/x/text/width"
	_ "golang.org/x/time/rate"
	_ "google.golang.org/protobuf/proto"
	_ "gopkg.in/yaml.v3"
)
