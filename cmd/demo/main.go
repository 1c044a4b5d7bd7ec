// Command demo runs the deployer locally against moto; see `make demo` and
// `make demo-accounts`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/demo"
)

func main() {
	var o demo.Options
	flag.StringVar(&o.MotoServer, "moto", envOr("AUTODEPLOY_MOTO_SERVER", ".venv/bin/moto_server"), "moto_server binary")
	flag.StringVar(&o.RIE, "rie", envOr("AUTODEPLOY_RIE", ".bin/aws-lambda-rie"), "aws-lambda-rie binary")
	flag.StringVar(&o.Deployer, "deployer", ".cache/local/deployer/bootstrap", "the deployer bootstrap built for this machine")
	flag.StringVar(&o.Watcher, "watcher", ".cache/local/watcher/bootstrap", "the watcher bootstrap built for this machine")
	flag.StringVar(&o.Worker, "worker", ".cache/local/worker/bootstrap", "the worker bootstrap built for this machine")
	flag.StringVar(&o.EventsDir, "events", "events", "directory of sample events")
	flag.BoolVar(&o.JSON, "json", false, "print the functions' log lines as the JSON they write, not in short")
	accounts := flag.Bool("accounts", false, "the two-account demo: a registry account, a target account in another region")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	run := demo.Run
	if *accounts {
		run = demo.RunAccounts
	}
	if err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
