package idnsim

import (
	"testing"

	"github.com/patjanitor/patjanitor/internal/testmain"
)

func TestMain(m *testing.M) { testmain.Run(m) }
