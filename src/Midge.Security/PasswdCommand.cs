using System.Globalization;
using System.Text;

namespace Midge.Security;

/// <summary>
/// <c>midge passwd</c>: mosquitto_passwd 2.0 with the same flags, messages and exit codes.
/// <code>
/// midge passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c | -D] passwordfile username
/// midge passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c] -b passwordfile username password
/// midge passwd [-H ...] [-I iterations] -U passwordfile
/// </code>
/// </summary>
/// <remarks>
/// Differences from mosquitto_passwd, all on the safe side: the file is rewritten through a temporary file in the
/// same directory that is flushed to disk and renamed over the original (keeping its permissions), instead of
/// being truncated in place; blank lines and '#' comments (which the broker accepts) are kept instead of being
/// reported as corrupt; <c>-U</c> leaves entries that already hold a $6$/$7$ hash alone instead of hashing the
/// hash, and honours <c>-I</c>.
/// </remarks>
public static class PasswdCommand
{
    private const int MaxLength = 65535;

    /// <summary>Runs the command; returns the process exit code (0 success, 1 error, 2 password mismatch).</summary>
    /// <param name="args">Arguments after <c>passwd</c>.</param>
    /// <param name="stdin">Standard input, used for the prompts when <paramref name="promptHidden"/> is null.</param>
    /// <param name="stdout">Usage and prompts go here.</param>
    /// <param name="stderr">Errors go here.</param>
    /// <param name="promptHidden">
    /// Shows a prompt and reads a password without echo; returns null at end of input. Use
    /// <see cref="ConsolePrompt"/> for the real console.
    /// </param>
    public static int Run(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr, Func<string, string?>? promptHidden)
    {
        ArgumentNullException.ThrowIfNull(args);
        promptHidden ??= prompt =>
        {
            stdout.Write(prompt);
            stdout.Flush();
            var line = stdin.ReadLine();
            stdout.WriteLine();
            return line;
        };

        if (args.Length == 0)
        {
            PrintUsage(stdout);
            return 1;
        }

        var kind = PasswordHashKind.Sha512Pbkdf2;
        int iterations = PasswordHash.DefaultIterations;
        bool batch = false, create = false, delete = false, update = false;
        int idx;
        for (idx = 0; idx < args.Length; idx++)
        {
            switch (args[idx])
            {
                case "-H":
                    if (idx + 1 == args.Length)
                    {
                        stderr.WriteLine("Error: -H argument given but not enough other arguments.");
                        return 1;
                    }
                    if (args[idx + 1] == "sha512") kind = PasswordHashKind.Sha512;
                    else if (args[idx + 1] == "sha512-pbkdf2") kind = PasswordHashKind.Sha512Pbkdf2;
                    else if (args[idx + 1] == "sha256-pbkdf2") kind = PasswordHashKind.Sha256Pbkdf2;
                    else
                    {
                        stderr.WriteLine($"Error: Unknown hash type '{args[idx + 1]}'");
                        return 1;
                    }
                    idx++;
                    continue;
                case "-b":
                    batch = true;
                    continue;
                case "-c":
                    create = true;
                    continue;
                case "-D":
                    delete = true;
                    continue;
                case "-I":
                    if (idx + 1 == args.Length)
                    {
                        stderr.WriteLine("Error: -I argument given but not enough other arguments.");
                        return 1;
                    }
                    iterations = Atoi(args[idx + 1]);
                    idx++;
                    if (iterations < 1)
                    {
                        stderr.WriteLine("Error: Number of iterations must be > 0.");
                        return 1;
                    }
                    continue;
                case "-U":
                    update = true;
                    continue;
            }
            break;
        }

        if (create && delete) return Fail(stderr, "Error: -c and -D cannot be used together.");
        if (create && update) return Fail(stderr, "Error: -c and -U cannot be used together.");
        if (delete && update) return Fail(stderr, "Error: -D and -U cannot be used together.");
        if (delete && batch) return Fail(stderr, "Error: -b and -D cannot be used together.");

        int rest = args.Length - idx;
        string file;
        string? user = null, password = null;
        if (create)
        {
            if (batch ? rest < 3 : rest < 2)
                return Fail(stderr, batch
                    ? "Error: -c argument given but password file, username, or password missing."
                    : "Error: -c argument given but password file or username missing.");
            file = args[idx];
            user = args[idx + 1];
            if (batch) password = args[idx + 2];
        }
        else if (delete)
        {
            if (rest < 2) return Fail(stderr, "Error: -D argument given but password file or username missing.");
            file = args[idx];
            user = args[idx + 1];
        }
        else if (update)
        {
            if (rest != 1) return Fail(stderr, "Error: -U argument given but password file missing.");
            file = args[idx];
        }
        else if (batch && rest == 3)
        {
            file = args[idx];
            user = args[idx + 1];
            password = args[idx + 2];
        }
        else if (!batch && rest == 2)
        {
            file = args[idx];
            user = args[idx + 1];
        }
        else
        {
            PrintUsage(stdout);
            return 1;
        }

        if (user is not null && !IsUsernameValid(user, stderr)) return 1;
        if (password is not null && Encoding.UTF8.GetByteCount(password) > MaxLength)
            return Fail(stderr, "Error: Password must be less than 65536 characters long.");

        string path = ResolveTarget(file);
        if (create)
        {
            if (password is null)
            {
                int rc = AskPassword(promptHidden, stderr, out password);
                if (rc != 0) return rc;
            }
            var text = FormatEntry(user!, password!, kind, iterations);
            return WriteFile(path, text, stderr, isNew: true);
        }

        string existing;
        try
        {
            existing = File.ReadAllText(path, new UTF8Encoding(false, throwOnInvalidBytes: false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail(stderr, $"Error: Unable to open password file {file}. {Describe(e)}.");
        }

        var lines = SplitLines(existing);
        var output = new StringBuilder(existing.Length + 200);
        if (delete)
        {
            bool found = false;
            for (int i = 0; i < lines.Count; i++)
            {
                if (!Classify(lines[i], i + 1, stderr, out var lineUser, out _, out bool isEntry)) return 1;
                if (isEntry && lineUser == user)
                {
                    found = true;
                    continue;
                }
                output.Append(lines[i]).Append('\n');
            }
            if (!found)
            {
                stderr.WriteLine($"Warning: User {user} not found in password file.");
                return 1;
            }
        }
        else if (update)
        {
            for (int i = 0; i < lines.Count; i++)
            {
                if (!Classify(lines[i], i + 1, stderr, out var lineUser, out var secret, out bool isEntry)) return 1;
                if (!isEntry || PasswordHash.TryParse(secret, out _, out _))
                {
                    output.Append(lines[i]).Append('\n');
                    continue;
                }
                output.Append(FormatEntry(lineUser, secret, kind, iterations));
            }
        }
        else
        {
            // Check the file before asking for the password, so a corrupt file fails fast.
            for (int i = 0; i < lines.Count; i++)
                if (!Classify(lines[i], i + 1, stderr, out _, out _, out _)) return 1;
            if (password is null)
            {
                int rc = AskPassword(promptHidden, stderr, out password);
                if (rc != 0) return rc;
            }
            bool found = false;
            for (int i = 0; i < lines.Count; i++)
            {
                Classify(lines[i], i + 1, TextWriter.Null, out var lineUser, out _, out bool isEntry);
                if (isEntry && lineUser == user)
                {
                    found = true;
                    output.Append(FormatEntry(user!, password!, kind, iterations));
                }
                else
                {
                    output.Append(lines[i]).Append('\n');
                }
            }
            if (!found) output.Append(FormatEntry(user!, password!, kind, iterations));
        }
        return WriteFile(path, output.ToString(), stderr, isNew: false);
    }

    /// <summary>
    /// Reads a password from the console without echo (Console.ReadKey with intercept) when standard input is a
    /// terminal, or reads a line when it is redirected. Returns null at end of input.
    /// </summary>
    public static string? ConsolePrompt(string prompt)
    {
        Console.Out.Write(prompt);
        Console.Out.Flush();
        if (Console.IsInputRedirected)
        {
            var line = Console.In.ReadLine();
            Console.Out.WriteLine();
            return line;
        }
        var sb = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter) break;
            if (key.Key == ConsoleKey.Backspace)
            {
                if (sb.Length > 0) sb.Length--;
                continue;
            }
            if (key.Key == ConsoleKey.D && key.Modifiers == ConsoleModifiers.Control && sb.Length == 0)
            {
                Console.Out.WriteLine();
                return null;
            }
            if (key.KeyChar != '\0') sb.Append(key.KeyChar);
        }
        Console.Out.WriteLine();
        return sb.ToString();
    }

    /// <summary>One line of a password file, as mosquitto_passwd writes it (with the trailing newline).</summary>
    public static string FormatEntry(string user, string password, PasswordHashKind kind = PasswordHashKind.Sha512Pbkdf2,
        int iterations = PasswordHash.DefaultIterations) =>
        $"{user}:{PasswordHash.Create(Encoding.UTF8.GetBytes(password), kind, iterations)}\n";

    private static int AskPassword(Func<string, string?> prompt, TextWriter stderr, out string? password)
    {
        password = prompt("Password: ");
        if (string.IsNullOrEmpty(password)) return Fail(stderr, "Error: Empty password.");
        if (Encoding.UTF8.GetByteCount(password) > MaxLength)
            return Fail(stderr, "Error: Password must be less than 65536 characters long.");
        var again = prompt("Reenter password: ");
        if (again != password)
        {
            stderr.WriteLine("Error: Passwords do not match.");
            return 2;
        }
        return 0;
    }

    /// <summary>
    /// Blank lines and comments are kept as they are (isEntry false); any other line must be <c>user:secret</c>.
    /// </summary>
    private static bool Classify(string line, int lineNo, TextWriter stderr, out string user, out string secret, out bool isEntry)
    {
        user = secret = "";
        isEntry = false;
        if (line.AsSpan().Trim().IsEmpty || line.TrimStart().StartsWith('#')) return true;
        if (!PasswordFile.TrySplitLine(line, out user, out secret))
        {
            stderr.WriteLine($"Error: Corrupt password file at line {lineNo}.");
            return false;
        }
        isEntry = true;
        return true;
    }

    private static List<string> SplitLines(string text)
    {
        var lines = new List<string>(text.Split('\n'));
        if (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        for (int i = 0; i < lines.Count; i++)
            if (lines[i].EndsWith('\r')) lines[i] = lines[i][..^1];
        return lines;
    }

    private static bool IsUsernameValid(string user, TextWriter stderr)
    {
        if (Encoding.UTF8.GetByteCount(user) > MaxLength)
        {
            stderr.WriteLine("Error: Username must be less than 65536 characters long.");
            return false;
        }
        foreach (char c in user)
        {
            if (char.IsControl(c))
            {
                stderr.WriteLine("Error: Username must not contain control characters.");
                return false;
            }
        }
        if (user.Contains(':'))
        {
            stderr.WriteLine("Error: Username must not contain the ':' character.");
            return false;
        }
        return true;
    }

    /// <summary>Follows symbolic links so the rename replaces the real file, not the link.</summary>
    private static string ResolveTarget(string file)
    {
        try
        {
            var info = new FileInfo(file);
            if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
                return target.FullName;
            return info.FullName;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return Path.GetFullPath(file);
        }
    }

    /// <summary>Writes a temporary file beside <paramref name="path"/>, flushes it to disk and renames it over.</summary>
    private static int WriteFile(string path, string text, TextWriter stderr, bool isNew)
    {
        string dir = Path.GetDirectoryName(path) ?? ".";
        string tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            // An existing file keeps its mode; a new one gets the umask's default, as mosquitto_passwd 2.0 does
            // (a root-owned 0600 file would be unreadable by a broker that drops privileges to its own user).
            if (!OperatingSystem.IsWindows() && File.Exists(path)) options.UnixCreateMode = File.GetUnixFileMode(path);
            using (var stream = new FileStream(tmp, options))
            {
                var bytes = new UTF8Encoding(false).GetBytes(text);
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(tmp); } catch (Exception ignored) when (ignored is IOException or UnauthorizedAccessException) { }
            stderr.WriteLine(isNew
                ? $"Error: Unable to open file {path} for writing. {Describe(e)}."
                : $"Error occurred updating password file. {Describe(e)}.");
            return 1;
        }
    }

    private static string Describe(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "No such file or directory",
        UnauthorizedAccessException => "Permission denied",
        _ => e.Message.TrimEnd('.'),
    };

    private static int Atoi(string s)
    {
        // C atoi: optional blanks and sign, then leading digits; anything else gives 0.
        var span = s.AsSpan().TrimStart();
        int end = 0;
        if (end < span.Length && (span[end] == '-' || span[end] == '+')) end++;
        while (end < span.Length && char.IsAsciiDigit(span[end])) end++;
        return int.TryParse(span[..end], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) ? v : 0;
    }

    private static int Fail(TextWriter stderr, string message)
    {
        stderr.WriteLine(message);
        return 1;
    }

    private static void PrintUsage(TextWriter stdout)
    {
        stdout.WriteLine("midge passwd is a tool for managing password files for midge and mosquitto.");
        stdout.WriteLine();
        stdout.WriteLine("Usage: midge passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c | -D] passwordfile username");
        stdout.WriteLine("       midge passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c] -b passwordfile username password");
        stdout.WriteLine("       midge passwd -U passwordfile");
        stdout.WriteLine(" -b : run in batch mode to allow passing passwords on the command line.");
        stdout.WriteLine(" -c : create a new password file. This will overwrite existing files.");
        stdout.WriteLine(" -D : delete the username rather than adding/updating its password.");
        stdout.WriteLine(" -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is recommended.");
        stdout.WriteLine("      sha256-pbkdf2 writes Midge's $8$ entries, for MQTT 5 SCRAM-SHA-256 (Mosquitto skips them).");
        stdout.WriteLine("      Mosquitto 1.6 and earlier defaulted to sha512.");
        stdout.WriteLine(" -I : number of PBKDF2 iterations (default 101, as mosquitto_passwd 2.0).");
        stdout.WriteLine(" -U : update a plain text password file to use hashed passwords.");
        stdout.WriteLine();
    }
}
