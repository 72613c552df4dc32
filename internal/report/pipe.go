package report

import "io"

// Chunks of the asynchronous writer: big enough that a table of 15 MB is a
// few dozen write(2) calls, few enough in hand that the renderer is at most
// about a megabyte ahead of the output.
const (
	chunkSize   = 256 << 10
	chunksAhead = 4
)

// pipeWriter collects what the table writes into chunks and writes them to w
// on a goroutine of its own, so that rendering goes on while the output takes
// the previous chunk. On a terminal the kernel's line discipline (each
// newline written as CR LF) runs inside write(2), on the writing thread: the
// renderer and the terminal then use a CPU each instead of taking turns.
//
// The first write error is kept and returned by close; what is written after
// it is dropped.
//
// The chunks are made as they are needed, the first grown by append: a
// table of a few lines (a confirmation) takes a few kilobytes, not
// chunksAhead chunks.
type pipeWriter struct {
	buf  []byte
	made int // chunks made, at most chunksAhead
	full chan []byte
	free chan []byte
	done chan error
}

func newPipeWriter(w io.Writer) *pipeWriter {
	p := &pipeWriter{
		made: 1, // buf
		full: make(chan []byte, chunksAhead),
		free: make(chan []byte, chunksAhead),
		done: make(chan error, 1),
	}
	go func() {
		var err error
		for b := range p.full {
			if err == nil {
				_, err = w.Write(b)
			}
			p.free <- b[:0]
		}
		p.done <- err
	}()
	return p
}

// send hands the current chunk to the writing goroutine and takes a free
// one, or makes one while fewer than chunksAhead exist.
func (p *pipeWriter) send() {
	p.full <- p.buf
	select {
	case p.buf = <-p.free:
		return
	default:
	}
	if p.made < chunksAhead {
		p.made++
		p.buf = make([]byte, 0, chunkSize)
		return
	}
	p.buf = <-p.free
}

func (p *pipeWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(p.buf)+len(b) > chunkSize {
		k := chunkSize - len(p.buf)
		p.buf = append(p.buf, b[:k]...)
		b = b[k:]
		p.send()
	}
	p.buf = append(p.buf, b...)
	return n, nil
}

func (p *pipeWriter) WriteString(s string) (int, error) {
	n := len(s)
	for len(p.buf)+len(s) > chunkSize {
		k := chunkSize - len(p.buf)
		p.buf = append(p.buf, s[:k]...)
		s = s[k:]
		p.send()
	}
	p.buf = append(p.buf, s...)
	return n, nil
}

func (p *pipeWriter) WriteByte(c byte) error {
	if len(p.buf) == chunkSize {
		p.send()
	}
	p.buf = append(p.buf, c)
	return nil
}

// close writes what is left, waits for every chunk to be written and
// returns the first write error.
func (p *pipeWriter) close() error {
	if len(p.buf) > 0 {
		p.full <- p.buf
		p.buf = nil
	}
	close(p.full)
	return <-p.done
}
