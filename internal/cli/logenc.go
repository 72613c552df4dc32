package cli

import (
	"strings"

	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// terminalEncoder is the console log encoder for a terminal. zap's console
// encoder writes the message raw and JSON-escapes the fields, and JSON leaves
// format characters such as U+202E raw: a token name in a message or a field
// could reorder a log line or, through the message, start a new one. Each
// encoded line goes through untrusted.Terminal, keeping the tabs the console
// format separates its columns with and the line ending: one entry, one line.
type terminalEncoder struct{ zapcore.Encoder }

func (e terminalEncoder) Clone() zapcore.Encoder { return terminalEncoder{e.Encoder.Clone()} }

func (e terminalEncoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	buf, err := e.Encoder.EncodeEntry(ent, fields)
	if err != nil {
		return buf, err
	}
	line, nl := strings.CutSuffix(buf.String(), "\n")
	cols := strings.Split(line, "\t")
	changed := false
	for i, c := range cols {
		if v := untrusted.Terminal(c); v != c {
			cols[i], changed = v, true
		}
	}
	if !changed {
		return buf, nil
	}
	buf.Reset()
	buf.AppendString(strings.Join(cols, "\t"))
	if nl {
		buf.AppendByte('\n')
	}
	return buf, nil
}
