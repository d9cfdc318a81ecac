using Microsoft.Extensions.Logging;

namespace Midge.Persistence;

/// <summary>What the SQLite store logs (event ids 6001 on).</summary>
internal static partial class StoreLog
{
    [LoggerMessage(6001, LogLevel.Error, "Persistence file {Path}: writing {Count} changes failed ({Problem}); nothing is lost yet, retrying every second")]
    public static partial void WriteFailed(ILogger logger, string path, int count, string problem);

    [LoggerMessage(6002, LogLevel.Debug, "Persistence file {Path}: writing {Count} changes failed again ({Problem})")]
    public static partial void WriteFailedAgain(ILogger logger, string path, int count, string problem);

    [LoggerMessage(6003, LogLevel.Information, "Persistence file {Path}: writing works again ({Count} changes written)")]
    public static partial void Recovered(ILogger logger, string path, int count);

    [LoggerMessage(6004, LogLevel.Error, "Persistence file {Path}: {Count} changes are waiting and none can be written; nothing more is recorded until the broker restarts")]
    public static partial void Stopped(ILogger logger, string path, int count);

    [LoggerMessage(6005, LogLevel.Error, "Persistence file {Path}: closing, {Count} changes could not be written and are lost ({Problem})")]
    public static partial void LostOnClose(ILogger logger, string path, int count, string problem);

    [LoggerMessage(6006, LogLevel.Warning, "Persistence file {Path}: closing it failed ({Problem})")]
    public static partial void CloseFailed(ILogger logger, string path, string problem);
}
