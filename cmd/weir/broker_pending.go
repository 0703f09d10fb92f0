//go:build !weirbroker

package main

import (
	"context"
	"errors"
	"io"
)

// brokerCmd stands in for broker.go until package broker provides Start;
// build with -tags weirbroker to use the real one.
func (a *app) brokerCmd(context.Context, io.Writer, []string) error {
	return errors.New("this weir binary was built without the broker (build with -tags weirbroker)")
}
