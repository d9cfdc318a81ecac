namespace Midge.Security;

/// <summary>What the broker knows about a connecting client when it asks an authenticator.</summary>
/// <param name="ClientId">The client identifier (possibly assigned by the broker).</param>
/// <param name="Username">The CONNECT user name, or null when the flag is not set.</param>
/// <param name="Password">The CONNECT password bytes, or null when the flag is not set.</param>
public sealed record AuthRequest(string ClientId, string? Username, ReadOnlyMemory<byte>? Password);

/// <summary>The verdict of an authenticator.</summary>
public enum AuthOutcome
{
    /// <summary>The credentials are good.</summary>
    Allow,

    /// <summary>
    /// No opinion: the client sent no user name. The broker applies <c>allow_anonymous</c> (or asks the next
    /// authenticator in its chain).
    /// </summary>
    Defer,

    /// <summary>Unknown user or wrong password. Mosquitto 2.0 answers CONNACK 5 (v3) / 0x87 Not authorized (v5).</summary>
    Deny,
}

/// <summary>An authenticator's answer.</summary>
/// <param name="Outcome">Allow, defer or deny.</param>
/// <param name="Reason">For the log when denied (never sent to the client).</param>
public readonly record struct AuthResult(AuthOutcome Outcome, string? Reason = null)
{
    public static AuthResult Allowed => new(AuthOutcome.Allow);
    public static AuthResult Deferred => new(AuthOutcome.Defer);
    public static AuthResult Denied(string reason) => new(AuthOutcome.Deny, reason);
}

/// <summary>
/// The broker's authentication seam: called once per CONNECT, before the session is created. Implementations must be
/// thread-safe; the call may complete synchronously.
/// </summary>
public interface IClientAuthenticator
{
    ValueTask<AuthResult> AuthenticateAsync(AuthRequest request, CancellationToken cancellationToken);
}

/// <summary>
/// Checks CONNECT credentials against a <see cref="PasswordFile"/> (Mosquitto's <c>password_file</c>). A client
/// without a user name is <see cref="AuthOutcome.Defer"/>red to <c>allow_anonymous</c>; a user name with a missing or
/// wrong password is denied. <see cref="Reload"/> swaps the file atomically (SIGHUP).
/// </summary>
public sealed class PasswordFileAuthenticator(PasswordFile file) : IClientAuthenticator
{
    private volatile PasswordFile _file = file ?? throw new ArgumentNullException(nameof(file));

    /// <summary>The snapshot in use.</summary>
    public PasswordFile File => _file;

    /// <summary>Replaces the snapshot; logins already being checked finish against the old one.</summary>
    public void Reload(PasswordFile file) => _file = file ?? throw new ArgumentNullException(nameof(file));

    public ValueTask<AuthResult> AuthenticateAsync(AuthRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        if (request.Username is null) return ValueTask.FromResult(AuthResult.Deferred);
        var file = _file;
        // A hash with many PBKDF2 iterations (mosquitto_passwd -I) takes milliseconds: it is computed on the thread
        // pool, so the caller (an I/O thread) awaits it instead of computing it. Mosquitto's default, 101, is inline.
        if (file.GetHash(request.Username) is { Iterations: > InlineIterations })
        {
            return new ValueTask<AuthResult>(Task.Run(() => Verify(file, request), cancellationToken));
        }
        return ValueTask.FromResult(Verify(file, request));
    }

    /// <summary>PBKDF2 iterations up to which a password is checked on the caller's thread (about half a millisecond
    /// of SHA-512 at most).</summary>
    public const int InlineIterations = 1000;

    private static AuthResult Verify(PasswordFile file, AuthRequest request)
    {
        // A missing password is checked as an empty one so that the failure costs the same time. Neither ever
        // passes, even against the hash of an empty password, as in Mosquitto: such an entry opens nothing.
        var password = request.Password ?? ReadOnlyMemory<byte>.Empty;
        bool ok = file.Verify(request.Username!, password.Span) && !password.IsEmpty;
        return ok ? AuthResult.Allowed : AuthResult.Denied("bad user name or password");
    }
}
