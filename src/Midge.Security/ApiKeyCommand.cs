using System.Security.Cryptography;

namespace Midge.Security;

/// <summary>
/// <c>midge apikey</c>: adds, replaces or removes a key of an <c>api_key_file</c>, the secret stored hashed as
/// <c>midge passwd</c> stores passwords (the file is rewritten the same safe way).
/// <code>
/// midge apikey [-c] [-H hash] [-I iterations] FILE KEY [SECRET]   add or replace KEY (a random secret when none is given)
/// midge apikey -D FILE KEY                                         remove KEY
/// </code>
/// The secret is printed once, as <c>KEY:SECRET</c>: the file keeps only its hash.
/// </summary>
public static class ApiKeyCommand
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        var options = new List<string>();
        var positional = new List<string>();
        bool delete = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-c":
                    options.Add("-c");
                    break;
                case "-D":
                    delete = true;
                    break;
                case "-H" or "-I" when i + 1 < args.Length:
                    options.Add(args[i]);
                    options.Add(args[++i]);
                    break;
                case "-h" or "--help":
                    stdout.WriteLine(Usage);
                    return 0;
                default:
                    if (args[i].StartsWith('-'))
                    {
                        stderr.WriteLine($"Error: unknown option '{args[i]}'.");
                        stderr.WriteLine(Usage);
                        return 1;
                    }
                    positional.Add(args[i]);
                    break;
            }
        }
        if (delete)
        {
            if (positional.Count != 2 || options.Count > 0)
            {
                stderr.WriteLine(Usage);
                return 1;
            }
            return PasswdCommand.Run(["-D", positional[0], positional[1]], TextReader.Null, stdout, stderr, _ => null);
        }
        if (positional.Count is < 2 or > 3)
        {
            stderr.WriteLine(Usage);
            return 1;
        }
        string key = positional[1];
        if (key.Length == 0 || key.Contains(':', StringComparison.Ordinal))
        {
            stderr.WriteLine("Error: a key must not be empty or contain ':'.");
            return 1;
        }
        string secret = positional.Count == 3 ? positional[2] : Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        int rc = PasswdCommand.Run([.. options, "-b", positional[0], key, secret], TextReader.Null, stdout, stderr, _ => null);
        if (rc == 0) stdout.WriteLine($"{key}:{secret}");
        return rc;
    }

    public const string Usage =
        "midge apikey adds, replaces or removes a key of an api_key_file (the HTTP API's keys).\n" +
        "Usage: midge apikey [-c] [-H sha512 | -H sha512-pbkdf2 | -H sha256-pbkdf2] [-I iterations] file key [secret]\n" +
        "       midge apikey -D file key\n" +
        " -c : create a new file, overwriting an existing one.\n" +
        " -D : remove the key.\n" +
        " -H : the hash (default sha512-pbkdf2).\n" +
        " -I : PBKDF2 iterations.\n" +
        "Without a secret, a random one is made. The key and its secret are printed once as key:secret;\n" +
        "the file keeps the secret's hash. Use them as HTTP Basic credentials (curl -u key:secret).";
}
