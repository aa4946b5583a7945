"""Run one diffcr program as a subprocess on behalf of a Processing algorithm.

Why a subprocess and not ctypes or in-process GDAL: a crash or a GPU out-of-memory in the C
core then cannot take QGIS down, GPU memory is released when the run ends, and the provider runs
exactly the code path the command-line tests cover.

What the programs print (see algorithms/programs/*.c):

* progress in GDALTermProgress's shape on stderr: ``0...10...20...30`` -- one tick per 2.5 %,
  a number every 10 %, no newline until ``100 - done.``;
* other messages as whole lines ``diffcr-decloud: <what>`` on stderr (warnings, notices);
* on failure, exit status != 0 with the reason as the last ``<program>: <what>`` line;
* on SIGTERM (or Ctrl-C) they stop at the next strip, delete their partial output and exit 130.

``run_program`` turns that into feedback calls: progress ticks -> ``feedback.setProgress``,
lines -> ``feedback.pushInfo`` (or a custom line handler), a non-zero exit ->
``QgsProcessingException`` carrying the program's one-line message. While the program runs it
polls ``feedback.isCanceled()``; on cancel it terminates the program, waits for it, and deletes
whatever the caller listed as outputs, so a cancelled run never leaves a partial raster behind.
"""
import codecs
import os
import queue
import re
import signal
import subprocess
import threading
import time

from qgis.core import QgsProcessingException

# How often isCanceled() is polled when the program prints nothing (seconds).
POLL_SECONDS = 0.1
# After SIGTERM the programs finish the current strip; give them this long before SIGKILL.
TERMINATE_GRACE_SECONDS = 20.0


class TermProgressParser:
    """Split a program's stderr into GDAL-style progress and message lines.

    Text arrives in arbitrary chunks, and progress never ends with a newline until 100 %, so the
    parser is a small character state machine rather than a line splitter. A progress run starts
    at the beginning of a line with a digit; every ``.`` and every number is one tick of 2.5 %,
    and each complete number re-synchronises the count (``30`` means 30 % whatever came before,
    so a restarted progress line is followed correctly). A line that merely starts with a digit
    (``0 rows``) is given back as text as soon as a non-progress character shows it is not
    progress.
    """

    def __init__(self, on_progress, on_line):
        """on_progress(percent: float) and on_line(text: str) receive the parsed events."""
        self.on_progress = on_progress
        self.on_line = on_line
        self.line = []           # text of the current non-progress line
        self.in_progress = False
        self.progress_text = []  # characters of the current progress run (given back if not one)
        self.ticks = -1          # ticks seen in the current progress run
        self.number = ''         # digits of the number being read
        self.saw_progress = False

    def _end_number(self):
        """A number just ended: its value fixes the tick count (10 % = 4 ticks)."""
        if self.number:
            value = int(self.number)
            self.ticks = value * 4 // 10 if value <= 100 else self.ticks + 1
            self.number = ''
            self._report()

    def _report(self):
        self.saw_progress = True
        self.on_progress(max(0.0, min(100.0, self.ticks * 2.5)))

    def _leave_progress(self, c):
        """A character that is not progress arrived in a progress run."""
        looks_like_progress = self.ticks > 0 or '.' in ''.join(self.progress_text)
        # Progress always starts with "0"; a bare "0" glued to a message ("0diffcr-decloud: ...")
        # is still the first tick, while "0 rows" or "3 dates" is a text line starting with a digit.
        starts_progress = self.number == '0' and c not in ' \t'
        if not looks_like_progress and not starts_progress:
            self.line.extend(self.progress_text)
        else:
            self._end_number()
        self.in_progress = False
        self.progress_text = []
        self.number = ''

    def feed(self, text):
        """Consume a chunk of decoded stderr text."""
        for c in text:
            if self.in_progress:
                if c.isdigit():
                    self.number += c
                    self.progress_text.append(c)
                    continue
                if c == '.':
                    self._end_number()
                    self.ticks += 1
                    self.progress_text.append(c)
                    self._report()
                    continue
                self._leave_progress(c)
                # fall through: c starts (or ends) a text line
            if c == '\n':
                self._flush_line()
            elif c.isdigit() and not self.line:
                self.in_progress = True
                self.progress_text = [c]
                self.number = c
                self.ticks = -1
            else:
                self.line.append(c)

    def _flush_line(self):
        text = ''.join(self.line).strip()
        self.line = []
        # " - done." closes a progress line; it carries no information of its own.
        if text and text != '- done.':
            self.on_line(text)

    def close(self):
        """End of stream: deliver what is pending."""
        if self.in_progress:
            self._leave_progress('\n')
        self._flush_line()


def _reader(stream, name, out_queue):
    """Thread body: move raw chunks from a pipe into the queue, then a final (name, None)."""
    fd = stream.fileno()
    try:
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            out_queue.put((name, chunk))
    except OSError:
        pass
    out_queue.put((name, None))


def remove_outputs(paths):
    """Delete output files (and GDAL's .aux.xml side-cars) that a failed or cancelled run left."""
    for path in paths:
        if not path:
            continue
        for p in (path, path + '.aux.xml'):
            try:
                if os.path.isfile(p):
                    os.remove(p)
            except OSError:
                pass


def error_message(program, lines, returncode):
    """The program's one-line reason for failing: its last ``<program>: ...`` line."""
    prefix = os.path.basename(program) + ':'
    for line in reversed(lines):
        if line.startswith(prefix) and ': warning:' not in line:
            return line
    if lines:
        return '{0} failed (exit status {1}): {2}'.format(os.path.basename(program), returncode,
                                                         lines[-1])
    if returncode < 0:
        return '{0} was killed by signal {1}'.format(os.path.basename(program), -returncode)
    return '{0} failed with exit status {1}'.format(os.path.basename(program), returncode)


def run_program(args, feedback, outputs=(), on_stderr_line=None, on_stdout_line=None,
                on_poll=None, env=None, cwd=None):
    """Run ``args`` (program path first), report through ``feedback``; return its stdout text.

    outputs: files the run creates, deleted when it is cancelled or fails.
    on_stderr_line / on_stdout_line: called with each complete message line (default:
        stderr lines go to feedback.pushInfo, stdout is only collected).
    on_poll: called about every POLL_SECONDS while the program runs (e.g. to read a log file).
    Raises QgsProcessingException with the program's message when it fails or is cancelled.
    """
    feedback.pushCommandInfo(' '.join(_quote(a) for a in args))
    stderr_lines = []

    def stderr_line(text):
        stderr_lines.append(text)
        if on_stderr_line is not None:
            on_stderr_line(text)
        elif ': warning:' in text and hasattr(feedback, 'pushWarning'):
            feedback.pushWarning(text)
        else:
            feedback.pushInfo(text)

    parser = TermProgressParser(feedback.setProgress, stderr_line)
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd=cwd)
    except OSError as e:
        raise QgsProcessingException('Cannot start {0}: {1}'.format(args[0], e))

    chunks = queue.Queue()
    threads = [threading.Thread(target=_reader, args=(proc.stdout, 'out', chunks), daemon=True),
               threading.Thread(target=_reader, args=(proc.stderr, 'err', chunks), daemon=True)]
    for t in threads:
        t.start()
    decoders = {'out': codecs.getincrementaldecoder('utf-8')(errors='replace'),
                'err': codecs.getincrementaldecoder('utf-8')(errors='replace')}
    stdout_parts = []
    stdout_pending = ['']
    open_streams = 2
    cancelled = False

    def handle_stdout(text):
        stdout_parts.append(text)
        if on_stdout_line is None:
            return
        buf = stdout_pending[0] + text
        *complete, stdout_pending[0] = buf.split('\n')
        for line in complete:
            if line.strip():
                on_stdout_line(line.rstrip())

    while open_streams:
        if feedback.isCanceled() and not cancelled:
            cancelled = True
            _terminate(proc)
        try:
            name, chunk = chunks.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if on_poll is not None:
                on_poll()
            continue
        if chunk is None:
            open_streams -= 1
            text = decoders[name].decode(b'', final=True)
        else:
            text = decoders[name].decode(chunk)
        if name == 'err':
            parser.feed(text)
        else:
            handle_stdout(text)
    parser.close()
    if on_stdout_line is not None and stdout_pending[0].strip():
        on_stdout_line(stdout_pending[0].rstrip())
    returncode = proc.wait()
    for t in threads:
        t.join()
    proc.stdout.close()
    proc.stderr.close()
    if on_poll is not None:
        on_poll()

    if cancelled or feedback.isCanceled():
        remove_outputs(outputs)
        raise QgsProcessingException(
            'Cancelled: {0} was stopped and no output was kept.'.format(os.path.basename(args[0])))
    if returncode != 0:
        remove_outputs(outputs)
        raise QgsProcessingException(error_message(args[0], stderr_lines, returncode))
    return ''.join(stdout_parts)


def _terminate(proc):
    """Ask the program to stop (SIGTERM: it cleans up its partial output), then insist."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + TERMINATE_GRACE_SECONDS
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()


_SAFE = re.compile(r'^[A-Za-z0-9_./:=,+@%-]+$')


def _quote(arg):
    """Shell-style quoting for the command line shown in the log (display only)."""
    arg = str(arg)
    if _SAFE.match(arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"
