package cluster

// memberlist's log lines, forwarded to slog at their level.

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// vetoMarker starts the error the alive delegate returns for an incompatible
// member. memberlist logs that error at WARN on every alive message it
// drops; the cluster already logged the member once, so those lines are
// forwarded at Debug.
const vetoMarker = "incompatible netsvc member"

// memberlistLogger returns a *log.Logger for memberlist.Config.Logger that
// forwards each line to l at the level in its bracketed prefix.
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

// logWriter receives memberlist's log lines: log.Logger makes one Write
// per line, shaped "[LEVEL] memberlist: message".
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	level, msg := parseMemberlistLine(string(p))
	ctx := context.Background()
	if w.log.Enabled(ctx, level) {
		w.log.Log(ctx, level, msg)
	}
	return len(p), nil
}

// memberlistLevels maps memberlist's bracketed level names to slog levels.
var memberlistLevels = map[string]slog.Level{
	"TRACE": slog.LevelDebug,
	"DEBUG": slog.LevelDebug,
	"INFO":  slog.LevelInfo,
	"WARN":  slog.LevelWarn,
	"ERR":   slog.LevelError,
	"ERROR": slog.LevelError,
}

// parseMemberlistLine returns the level and message of one memberlist log
// line. A line without a known level is kept whole, at Info.
func parseMemberlistLine(line string) (slog.Level, string) {
	msg := strings.TrimSpace(line)
	level := slog.LevelInfo
	if strings.HasPrefix(msg, "[") {
		if end := strings.IndexByte(msg, ']'); end > 0 {
			if l, ok := memberlistLevels[msg[1:end]]; ok {
				level = l
				msg = strings.TrimSpace(msg[end+1:])
			}
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	if level > slog.LevelDebug && (strings.Contains(msg, vetoMarker) || strings.Contains(msg, "use of closed network connection")) {
		// Vetoes were logged once already; a closed connection is what a
		// shutdown looks like to memberlist's background sends.
		level = slog.LevelDebug
	}
	return level, msg
}
