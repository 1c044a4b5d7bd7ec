// Command sandbox is `make sandbox` (start) and `make sandbox-stop`
// (stop): moto left running with the demo's services and rules, for the
// CLI to be tried against.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/sandbox"
)

func main() {
	fs := flag.NewFlagSet("sandbox", flag.ExitOnError)
	o := sandbox.Options{Out: os.Stdout}
	fs.StringVar(&o.Dir, "dir", ".cache/sandbox", "where the sandbox's state is kept")
	fs.StringVar(&o.MotoServer, "moto", envOr("AUTODEPLOY_MOTO_SERVER", ".venv/bin/moto_server"), "moto_server binary")
	fs.Usage = func() { fmt.Fprintln(os.Stderr, "usage: sandbox [-dir DIR] [-moto PATH] start|stop") }
	if len(os.Args) < 2 {
		fs.Usage()
		os.Exit(2)
	}
	// The command comes first, as make passes it; flags after it.
	command := os.Args[1]
	_ = fs.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch command {
	case "start":
		err = sandbox.Start(ctx, o)
	case "stop":
		err = sandbox.Stop(o)
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
