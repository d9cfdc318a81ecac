using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Midge;

/// <summary>The configured log file cannot be opened; the message says which and why, in one line.</summary>
internal sealed class LogFileException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// One log destination (stdout, stderr, the log file, syslog): a bounded queue of lines that any thread fills without
/// waiting, and a background thread that writes them. When the destination does not keep up and
/// <see cref="MidgeLoggerProvider.QueueLines"/> are waiting, further lines are dropped and counted; the destination
/// gets "N log lines dropped (NAME was not keeping up)" as soon as there is room again.
/// </summary>
internal sealed class LogWriter
{
    private const int BatchLines = 256;

    private readonly string _name;
    private readonly Stream? _stream;
    private readonly bool _ownsStream;
    private readonly Socket? _socket;
    private readonly Func<string, string> _note;
    private readonly int _capacity;
    private readonly Queue<string> _queue = new();
    private long _dropped;
    private long _batchesWritten;
    private bool _writing;
    private bool _writerWaiting;
    private bool _completed;
    private bool _finished;

    private LogWriter(string name, Stream? stream, bool ownsStream, Socket? socket, Func<string, string> note, int capacity)
    {
        _name = name;
        _stream = stream;
        _ownsStream = ownsStream;
        _socket = socket;
        _note = note;
        _capacity = capacity;
        new Thread(Run) { IsBackground = true, Name = ownsStream ? "midge log file" : "midge log " + name }.Start();
    }

    /// <summary>Lines to a stream (each followed by a newline), as few writes as the queue allows.</summary>
    /// <param name="note">Formats the drop count as a line of this destination (with its time stamp).</param>
    public static LogWriter ForStream(string name, Stream stream, bool owned, Func<string, string> note,
        int capacity = MidgeLoggerProvider.QueueLines) =>
        new(name, stream, owned, null, note, capacity);

    /// <summary>One datagram per line (syslog); the socket is the writer's.</summary>
    public static LogWriter ForDatagrams(string name, Socket socket, Func<string, string> note,
        int capacity = MidgeLoggerProvider.QueueLines) =>
        new(name, null, false, socket, note, capacity);

    /// <summary>Lines dropped since the last count was written.</summary>
    public long Dropped
    {
        get
        {
            lock (_queue) return _dropped;
        }
    }

    /// <summary>Queues <paramref name="line"/>, or drops and counts it when the queue is full. Never waits.</summary>
    public void Enqueue(string line)
    {
        lock (_queue)
        {
            if (_completed) return;
            if (_queue.Count >= _capacity)
            {
                _dropped++;
                return;
            }
            if (_dropped > 0) TakeDropCount();
            _queue.Enqueue(line);
            if (_writerWaiting) Monitor.PulseAll(_queue);
        }
    }

    /// <summary>No more lines: the thread writes what is queued, closes what it owns, and ends.</summary>
    public void Complete()
    {
        lock (_queue)
        {
            _completed = true;
            Monitor.PulseAll(_queue);
        }
    }

    /// <summary>
    /// Waits until everything queued (and the drop count) is written, giving up when no write completed for
    /// <paramref name="stalled"/> (a destination that takes nothing any more). True when all was written.
    /// </summary>
    public bool Flush(TimeSpan stalled)
    {
        lock (_queue)
        {
            long progress = _batchesWritten;
            var lastProgress = DateTime.UtcNow;
            while (!_finished && (_queue.Count > 0 || _writing || _dropped > 0))
            {
                var left = stalled - (DateTime.UtcNow - lastProgress);
                if (left <= TimeSpan.Zero) return false;
                Monitor.Wait(_queue, left);
                if (_batchesWritten != progress)
                {
                    progress = _batchesWritten;
                    lastProgress = DateTime.UtcNow;
                }
            }
            return true;
        }
    }

    private void TakeDropCount()
    {
        string count = _dropped.ToString(CultureInfo.InvariantCulture);
        _dropped = 0;
        _queue.Enqueue(_note($"{count} log lines dropped ({_name} was not keeping up)"));
    }

    private void Run()
    {
        var batch = new List<string>(BatchLines);
        var bytes = new MemoryStream();
        while (true)
        {
            lock (_queue)
            {
                if (_writing)
                {
                    _writing = false;
                    _batchesWritten++;
                    Monitor.PulseAll(_queue); // Flush
                }
                // Drained after dropping: say how many were lost now, not only when the next line comes.
                if (_queue.Count == 0 && _dropped > 0) TakeDropCount();
                while (_queue.Count == 0 && !_completed)
                {
                    _writerWaiting = true;
                    Monitor.Wait(_queue);
                    _writerWaiting = false;
                }
                if (_queue.Count == 0) break; // completed and drained
                while (_queue.Count > 0 && batch.Count < BatchLines) batch.Add(_queue.Dequeue());
                _writing = true;
            }
            Write(batch, bytes);
            batch.Clear();
        }
        if (_ownsStream) _stream?.Dispose();
        _socket?.Dispose();
        lock (_queue)
        {
            _finished = true;
            Monitor.PulseAll(_queue);
        }
    }

    private void Write(List<string> batch, MemoryStream bytes)
    {
        try
        {
            if (_socket is not null)
            {
                foreach (var line in batch) _socket.Send(Encoding.UTF8.GetBytes(line));
                return;
            }
            bytes.SetLength(0);
            foreach (var line in batch)
            {
                bytes.Write(Encoding.UTF8.GetBytes(line));
                bytes.WriteByte((byte)'\n');
            }
            _stream!.Write(bytes.GetBuffer(), 0, (int)bytes.Length);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or UnauthorizedAccessException)
        {
            // A destination that fails (a closed pipe, a full disk) loses these lines; logging must not stop the broker.
        }
    }
}
