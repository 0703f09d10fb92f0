package broker

import (
	"errors"

	"github.com/hashicorp/raft"
	"github.com/weir-io/weir/internal/replica"
)

func adoptTODO(replica.Config, []raft.Server) error { return errors.New("adopt pending") }
