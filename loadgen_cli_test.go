package main

import (
	"context"
	"errors"
	"flag"
	"testing"
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
