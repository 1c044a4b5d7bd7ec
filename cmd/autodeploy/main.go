// Command autodeploy is the operator CLI of ecr-autodeploy; see internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := cli.Run(ctx, os.Args[1:], cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, AWS: awsenv.Load, Now: time.Now,
	})
	stop()
	os.Exit(code)
}
