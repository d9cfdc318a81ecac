namespace Midge.Core.Tests;
